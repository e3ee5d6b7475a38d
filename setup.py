import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

# A .pth file in site-packages is run by Python's site module at start-up.
# This one installs _mixnorm_chainer_hook's finder, which patches NumPy and
# setuptools for Chainer before the first `import chainer`; it does nothing
# when the module is gone (a file left behind by an uninstall).
PTH = 'mixnorm-chainer-hook.pth'
PTH_TEXT = (
    '# mixnorm: make `import chainer` work before `import mixnorm`\n'
    'import sys; exec("try: from _mixnorm_chainer_hook import install\\n'
    'except ImportError: pass\\nelse: install()")\n')


def write_pth(directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, PTH), 'w') as f:
        f.write(PTH_TEXT)


class BuildPy(build_py):
    """build_py that also puts the .pth at the root of the wheel.

    A wheel installs what build_lib holds into site-packages.  An editable
    (PEP 660) wheel takes nothing from build_lib: setuptools packs it from
    the folder it makes install's install_lib, so the .pth goes there.
    """

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            write_pth(self.get_finalized_command('install').install_lib)
        else:
            write_pth(self.build_lib)

    def get_outputs(self, *args, **kwargs):
        outputs = super().get_outputs(*args, **kwargs)
        if getattr(self, 'editable_mode', False):
            return outputs
        return outputs + [os.path.join(self.build_lib, PTH)]


class Develop(develop):
    """`setup.py develop` as pip runs it without PEP 660 (setuptools < 80):
    the .pth goes into the site-packages it links the project from."""

    def run(self):
        super().run()
        target = getattr(self, 'install_dir', None)
        if not target:  # setuptools >= 80: pip installs an editable wheel
            return
        if getattr(self, 'uninstall', False):
            if os.path.exists(os.path.join(target, PTH)):
                os.remove(os.path.join(target, PTH))
        else:
            write_pth(target)


setup(
    name='mixnorm',
    version='0.1.0',
    description='Mixture Normalization (Kalayeh & Shah, TPAMI 2019) '
                'for Chainer and CuPy',
    packages=find_packages(include=['mixnorm', 'mixnorm.*', 'models',
                                    'models.*', 'train', 'train.*']),
    py_modules=['_mixnorm_chainer_hook'],
    package_data={'mixnorm.cuda': ['*.cu', '*.cuh']},
    python_requires='>=3.10',
    install_requires=[
        'chainer==7.8.1',
        'numpy>=1.26',
        'pyyaml',
        'matplotlib',
        'pillow',
        'threadpoolctl',
    ],
    extras_require={
        'cuda12': ['cupy-cuda12x>=13'],
        'cuda13': ['cupy-cuda13x>=14'],
        'test': ['pytest', 'scikit-learn'],
        # NVRTC alone, no GPU needed: tests compile the CUDA sources with it
        'nvrtc': ['nvidia-cuda-nvrtc>=13,<14'],
        # ChainerMN (inside Chainer 7): mpi4py and an MPI, both as wheels
        'multinode': ['mpi4py', 'mpich'],
        # reading the PyTorch FID weights (python -m train.fid convert) only;
        # a CPU build of torch is enough
        'fid-convert': ['torch'],
    },
    entry_points={'console_scripts': ['mixnorm-train=train.cli:main']},
    cmdclass={'build_py': BuildPy, 'develop': Develop},
)
