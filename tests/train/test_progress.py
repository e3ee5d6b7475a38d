"""Progress of long steps: the counter, decoding images, training."""
import functools
import io

from train import config
from train.classifier import runner
from train.common import console
from train.data import imagefolder
from train.output import progress
from tinydata import make_folder, make_zip, write_config


class _Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_per_interval():
    clock, log = _Clock(), io.StringIO()
    p = progress.Progress('decoding x.zip', 1000, 'images', stream=log,
                          interval=15.0, clock=clock)
    for done, t in ((100, 5), (200, 14.9), (300, 15.0), (400, 20),
                    (500, 30.5)):
        clock.now = 100.0 + t
        p.update(done)
    p.finish('; cached as c.npz')
    assert log.getvalue().splitlines() == [
        'decoding x.zip: 300 of 1,000 images (30%), 15 s',
        'decoding x.zip: 500 of 1,000 images (50%), 30 s',
        'decoding x.zip: 1,000 of 1,000 images (100%), 30 s; cached as '
        'c.npz']


def test_a_terminal_gets_a_counter_redrawn_in_place():
    clock, tty = _Clock(), _Terminal()
    p = progress.Progress('training bn2', 50, 'iterations', stream=tty,
                          clock=clock)
    for i in range(1, 11):
        clock.now += 0.25
        p.update(i)
    p.finish()
    text = tty.getvalue()
    assert text.count('\n') == 1 and text.endswith('\n')
    assert text.count('\r\033[K') == 6  # every half second, and the end
    assert '\r\033[Ktraining bn2: 10 of 50 iterations (20%), 2 s' in text


def test_decoding_reports_its_progress(tmp_path, monkeypatch):
    monkeypatch.setenv('MIXNORM_CACHE', str(tmp_path / 'cache'))
    folder = make_folder(str(tmp_path / 'data'), n_train=2, n_test=1)
    z = make_zip(folder, str(tmp_path / 'data.zip'))
    # a line after every chunk of 7 images
    monkeypatch.setattr(imagefolder, 'CHUNK', 7)
    monkeypatch.setattr(imagefolder, 'Progress', functools.partial(
        progress.Progress, interval=0.0))
    log = io.StringIO()
    imagefolder.load_image_folder(z, processes=1, log=log)
    lines = log.getvalue().splitlines()
    assert lines[0] == 'decoding 30 images of {} once (then cached in {})'\
        .format(z, tmp_path / 'cache')
    # train: 20 images in chunks of 7, 7, 6; test: 10 in 7, 3
    assert [line.split(': ')[1].split(' images')[0] for line in lines[1:-1]
            ] == ['7 of 30', '14 of 30', '20 of 30', '27 of 30', '30 of 30']
    assert lines[-1].startswith('decoding data.zip: 30 of 30 images (100%)')
    assert 'cached as {}'.format(tmp_path / 'cache') in lines[-1]
    # cached: nothing to decode, nothing printed
    log = io.StringIO()
    imagefolder.load_image_folder(z, log=log)
    assert log.getvalue() == ''


def test_training_reports_progress_to_a_log(tmp_path, monkeypatch):
    """Not a terminal: lines 'training NAME: I of N iterations' between
    the epoch lines (every 30 s; here at every iteration)."""
    monkeypatch.setenv('MIXNORM_CACHE', str(tmp_path / 'cache'))
    data = make_folder(str(tmp_path / 'data'), n_train=2, n_test=1)
    cfg = config.load(write_config(str(tmp_path / 'c.yaml'), batch_size=8,
                                   epochs=2), check_model=False)
    monkeypatch.setattr(console.LogProgress.__init__, '__defaults__', (0.0,))
    log = io.StringIO()
    runner.run(cfg, str(tmp_path / 'run'), device='@numpy', data=data,
               log=log)
    lines = log.getvalue().splitlines()
    ticks = [line for line in lines if line.startswith('training tiny: ')]
    # 20 images, batch 8: 3 iterations per epoch (the last one short)
    assert [t.split(' iterations')[0] for t in ticks] == [
        'training tiny: {} of 5'.format(i) for i in range(1, 6)]
    assert '\033' not in log.getvalue()  # plain text in a log
