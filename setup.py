from setuptools import find_packages, setup

setup(
    name='mixnorm',
    version='0.1.0',
    description='Mixture Normalization (Kalayeh & Shah, TPAMI 2019) '
                'for Chainer and CuPy',
    packages=find_packages(include=['mixnorm', 'mixnorm.*', 'models',
                                    'models.*', 'train', 'train.*']),
    package_data={'mixnorm.cuda': ['*.cu', '*.cuh']},
    python_requires='>=3.10',
    install_requires=[
        'chainer==7.8.1',
        'numpy>=1.26',
        'pyyaml',
        'matplotlib',
        'pillow',
    ],
    extras_require={
        'cuda12': ['cupy-cuda12x>=13'],
        'cuda13': ['cupy-cuda13x>=14'],
        'test': ['pytest', 'scikit-learn'],
        # NVRTC alone, no GPU needed: tests compile the CUDA sources with it
        'nvrtc': ['nvidia-cuda-nvrtc>=13,<14'],
        # ChainerMN (inside Chainer 7): mpi4py and an MPI, both as wheels
        'multinode': ['mpi4py', 'mpich'],
        # reading the PyTorch FID weights (python -m train.fid_convert) only;
        # a CPU build of torch is enough
        'fid-convert': ['torch'],
    },
    entry_points={'console_scripts': ['mixnorm-train=train.cli:main']},
)
