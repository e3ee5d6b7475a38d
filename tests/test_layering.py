"""The package's structure: no import cycle inside mixnorm, and no import
running back up the layers benchmarks -> train -> models -> mixnorm."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
