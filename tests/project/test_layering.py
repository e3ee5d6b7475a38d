"""The package's structure: no import cycle inside mixnorm, no import
running back up the layers benchmarks -> train -> models -> mixnorm, train
by concern, benchmarks sharing modules, tests grouped by what they cover,
and README.md's Layout section naming all of it."""
import ast
import os

import pytest

from tinydata import ROOT

LAYERS = ('mixnorm', 'models', 'train', 'benchmarks')


def modules(package):
    """{dotted name: path} of every .py file under ``package``."""
    out = {}
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if rel[-1] == '__init__':
                    rel = rel[:-1]
                out['.'.join(rel)] = path
    return out


def imports(path, known):
    """The modules of ``known`` that the file at ``path`` imports."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = ['{}.{}'.format(node.module, a.name) for a in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        for name in names:
            while name and name not in known:  # a name inside a module
                name = name.rpartition('.')[0]
            if name:
                found.add(name)
    return found


def cycle(graph):
    """One import cycle of ``graph`` as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 'done'
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    found = cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}})
    assert found == ['a', 'b', 'c', 'a']
    assert cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycle_inside_mixnorm():
    known = modules('mixnorm')
    graph = {}
    for name, path in known.items():
        # a package's own __init__ runs before its modules: not an edge
        parents = {name.rsplit('.', i)[0] for i in range(name.count('.'))}
        graph[name] = imports(path, known) - parents - {name}
    assert cycle(graph) is None, ' -> '.join(cycle(graph))
    for name in graph:  # nothing reaches back into the package's front
        if name != 'mixnorm':
            assert 'mixnorm' not in graph[name], name


@pytest.mark.parametrize('layer', LAYERS)
def test_no_import_runs_up_the_layers(layer):
    above = LAYERS[LAYERS.index(layer) + 1:]
    known = {}
    for package in LAYERS:
        known.update(modules(package))
    for name, path in modules(layer).items():
        for target in imports(path, known):
            assert target.split('.')[0] not in above, (name, target)


# ------------------------------------------------------------------ train/
# train's packages from the bottom up: a module imports modules of its own
# package and of lower levels only (train/cli.py and train/__main__.py are
# the package 'cli'; train/__init__.py imports nothing from train)
TRAIN_LEVELS = (('output', 'device', 'metrics'), ('data',), ('config',),
                ('common',), ('fid',), ('classifier', 'gan'), ('report',),
                ('figures',), ('cli',), ('study',))
MAX_LINES = 500  # no train/ module above it


def _package(name):
    """The package of train that module ``name`` belongs to
    (``train.report.cli`` -> ``report``; ``train.__main__`` -> ``cli``;
    ``train`` -> None)."""
    if not name.count('.'):
        return None
    part = name.split('.')[1]
    return 'cli' if part == '__main__' else part


def test_train_levels_name_every_package():
    named = {p for level in TRAIN_LEVELS for p in level}
    found = {_package(n) for n in modules('train')} - {None}
    assert found == named, found ^ named


def test_no_import_cycle_inside_train():
    """Importing ``train.x.y`` runs ``train/x/__init__.py`` first: an edge
    to a module is one to its packages too (but those of the importer,
    already running, and the root ``train``)."""
    known = modules('train')
    graph = {}
    for name, path in known.items():
        parents = {name.rsplit('.', i)[0] for i in range(name.count('.'))}
        targets = set()
        for target in imports(path, known):
            targets |= {target.rsplit('.', i)[0]
                        for i in range(target.count('.'))}
        graph[name] = targets - parents - {name, 'train'}
    assert cycle(graph) is None, ' -> '.join(cycle(graph))


def test_train_packages_import_downwards_only():
    level = {p: i for i, ps in enumerate(TRAIN_LEVELS) for p in ps}
    known = modules('train')
    for name, path in known.items():
        mine = _package(name)
        for target in imports(path, known):
            theirs = _package(target)
            if mine is None:  # train/__init__.py
                assert theirs is None, (name, target)
            elif theirs != mine:
                assert theirs is not None and level[theirs] < level[mine], (
                    name, target)


def test_no_module_imports_a_name_from_its_own_package_front():
    """A module imports its siblings by module path: a name from its own
    package's __init__ would run that __init__ half-done."""
    known = modules('train')
    for name, path in known.items():
        parents = {name.rsplit('.', i)[0] for i in range(1, name.count('.'))}
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in parents:
                for a in node.names:
                    assert '{}.{}'.format(node.module, a.name) in known, (
                        name, node.module, a.name)


def test_no_train_module_is_over_the_limit():
    for name, path in modules('train').items():
        with open(path) as f:
            n = sum(1 for _ in f)
        assert n <= MAX_LINES, (name, n)


# ------------------------------------------------------- private names
def _private(name):
    """A leading underscore that is not a dunder (``_x``, not ``__x__``)."""
    return name.startswith('_') and not (name.startswith('__') and
                                         name.endswith('__'))


def covered(path):
    """The names a test of train (a file under tests/train/) covers: its
    file name without ``test_`` and its folders under tests/train/
    (``tests/train/test_fid.py``: ``fid``;
    ``tests/train/fid/test_frechet.py``: ``fid``, ``frechet``).  A test
    may use the private names of a train module whose dotted path has one
    of them as a component (``train.fid.inception``,
    ``train.metrics.fid``): its own module's.  Other files (train/,
    benchmarks/, the tests of other packages, the tests' helpers) cover
    nothing."""
    rel = os.path.relpath(path, os.path.join(ROOT, 'tests', 'train')).split(
        os.sep)
    if rel[0] == os.pardir or not rel[-1].startswith('test_'):
        return set()
    return set(rel[:-1] + [rel[-1][len('test_'):-len('.py')]])


def private_uses(path, module, known):
    """``(line, what)`` of each private name of another train module that
    the file at ``path`` (the module ``module``, or None) imports or uses:
    ``from train.x import _y``, ``x._y`` or ``x.Y._z`` for an imported
    module ``x``, ``setattr``/``getattr``/``monkeypatch.setattr(x, '_y')``,
    and importing a module whose path has a private part from outside its
    package."""
    with open(path) as f:
        tree = ast.parse(f.read())
    aliases = {}  # local name -> train module
    found = []
    mine = covered(path)

    def foreign(target, what, line):
        if target == module:
            return
        if mine & set(target.split('.')[1:]):
            return
        found.append((line, '{} ({})'.format(what, target)))

    def private_module(name, line):
        parts = name.split('.')
        for i, part in enumerate(parts):
            if _private(part):
                package = '.'.join(parts[:i])
                if not (module or '').startswith(package + '.'):
                    foreign(name, 'import of private module ' + name, line)
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split('.')[0] != 'train':
                    continue
                private_module(a.name, node.lineno)
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases['train'] = 'train'
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split('.')[0] == 'train':
            for a in node.names:
                full = '{}.{}'.format(node.module, a.name)
                if full in known:
                    private_module(full, node.lineno)
                    aliases[a.asname or a.name] = full
                elif _private(a.name):
                    foreign(node.module, 'imports ' + a.name, node.lineno)

    def resolve(node):
        """The dotted name of ``node`` when it starts at a train alias."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in aliases:
            return None
        return '.'.join([aliases[node.id]] + parts[::-1])

    def check(dotted, line):
        """The longest module prefix of ``dotted`` and the names after it."""
        parts = dotted.split('.')
        for i in range(len(parts), 0, -1):
            if '.'.join(parts[:i]) in known:
                rest = parts[i:]
                if any(_private(p) for p in rest):
                    foreign('.'.join(parts[:i]), 'uses ' + dotted, line)
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = resolve(node)
            if dotted:
                check(dotted, node.lineno)
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                getattr(func, 'id', None)
            target, attr = node.args[0], node.args[1]
            if name in ('setattr', 'getattr', 'delattr') and \
                    isinstance(attr, ast.Constant) and \
                    isinstance(attr.value, str):
                dotted = resolve(target)
                if dotted:
                    check(dotted + '.' + attr.value, node.lineno)
    return found


def _python_files(folder):
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(dirpath, name)


def test_private_finder_finds_private_uses(tmp_path):
    known = modules('train')
    path = str(tmp_path / 'user.py')
    with open(path, 'w') as f:
        f.write('from train.metrics import fid\n'
                'from train.common import runfolder as rf\n'
                'from train.data.imagefolder import _decode_chunk\n'
                'import train.fid.convert\n'
                'fid._sqrt_product\n'
                'rf.Run._private\n'
                'train.fid.convert._targets\n'
                'monkeypatch.setattr(rf, "_x", 1)\n'
                'fid.frechet_distance, rf.Run.__init__\n')
    found = [what for _, what in private_uses(path, None, known)]
    assert len(found) == 5, found
    assert private_uses(path, 'train.metrics.fid', known) != []
    # a module's own tests: tests/train/test_fid.py covers train.*.fid.*
    tests = os.path.join(ROOT, 'tests')
    assert covered(os.path.join(tests, 'train', 'test_fid.py')) == {'fid'}
    assert covered(os.path.join(tests, 'train', 'fid',
                                'test_frechet.py')) == {'fid', 'frechet'}
    # the tests of other packages, and the helpers, cover no train module
    assert covered(os.path.join(tests, 'mixnorm', 'test_gmm.py')) == set()
    assert covered(os.path.join(tests, 'test_fid.py')) == set()
    assert covered(os.path.join(tests, 'support', 'tinydata.py')) == set()


def test_no_private_name_of_train_is_used_across_modules():
    """train/, benchmarks/ and tests/ use no ``_name`` of a train module
    other than their own (a test: of the modules it covers)."""
    known = modules('train')
    by_path = {path: name for name, path in known.items()}
    problems = []
    for folder in ('train', 'benchmarks', 'tests'):
        for path in _python_files(folder):
            for line, what in private_uses(path, by_path.get(path), known):
                problems.append('{}:{}: {}'.format(
                    os.path.relpath(path, ROOT), line, what))
    assert not problems, '\n'.join(problems)


# ------------------------------------------------ benchmarks/ and tests/
def is_script(path):
    """Whether the module at ``path`` runs as a program (``__main__``)."""
    with open(path) as f:
        return "if __name__ == '__main__':" in f.read()


def shared_benchmark_modules():
    """The modules of benchmarks that run nothing themselves."""
    return {name for name, path in modules('benchmarks').items()
            if name != 'benchmarks' and not is_script(path)}


def test_benchmarks_share_modules_instead_of_importing_each_other():
    """A benchmark imports the shared modules, not another benchmark, and
    runs as ``python -m benchmarks.NAME``, changing no ``sys.path``."""
    known = modules('benchmarks')
    scripts = set(known) - shared_benchmark_modules() - {'benchmarks'}
    assert 'benchmarks.step' in scripts and 'benchmarks.timing' not in scripts
    for name, path in known.items():
        assert not imports(path, known) & scripts, name
        with open(path) as f:
            assert 'sys.path' not in f.read(), name


def folders(path):
    """The folders in ``path`` (not ``__pycache__`` or hidden ones)."""
    return sorted(n for n in os.listdir(path)
                  if os.path.isdir(os.path.join(path, n))
                  and n != '__pycache__' and not n.startswith('.'))


def test_folders_are_the_folders_that_hold_code(tmp_path):
    for name in ('a/__pycache__', '.b', 'c'):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / 'd.py').write_text('')
    assert folders(str(tmp_path)) == ['a', 'c']


def test_tests_are_grouped_by_what_they_cover():
    """tests/ holds conftest.py and one folder per package covered (and
    ``support/`` for the helpers, which holds no test)."""
    tests = os.path.join(ROOT, 'tests')
    files = [n for n in os.listdir(tests)
             if os.path.isfile(os.path.join(tests, n))]
    assert files == ['conftest.py']
    assert 'support' in folders(tests) and 'train' in folders(tests)
    for name in os.listdir(os.path.join(tests, 'support')):
        assert not name.startswith('test_'), name


# --------------------------------------------------------- README.md
def readme_layout():
    """README.md's Layout section: {the first name of each item: the names
    of its sub-items} (``- `train/`: ...`` holds ``  - `output/`: ...``)."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    layout = text.split('\n## Layout\n', 1)[1].split('\n## ', 1)[0]
    out, items = {}, None
    for line in layout.splitlines():
        if line.startswith('- `'):
            items = out.setdefault(line.split('`')[1], [])
        elif line.startswith('  - `'):
            items.append(line.split('`')[1])
    return out


def test_readme_layout_names_every_train_package():
    """README.md's Layout section lists train's packages in their order."""
    listed = [n.rstrip('/').replace('.py', '')
              for n in readme_layout()['train/']]
    assert listed == [p for level in TRAIN_LEVELS for p in level]


def test_readme_layout_names_the_shared_benchmark_modules():
    listed = readme_layout()['benchmarks/']
    assert sorted(listed) == sorted(
        name.split('.')[1] + '.py' for name in shared_benchmark_modules())


def test_readme_layout_names_every_folder_of_tests():
    listed = [n.rstrip('/') for n in readme_layout()['tests/']]
    assert sorted(listed) == folders(os.path.join(ROOT, 'tests'))
