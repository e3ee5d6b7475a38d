"""A study's folder: its runs' folders and ``study.json``, the record of
every invocation (when, where: device, host and package versions, with
what budget, and what became of each run)."""
import datetime
import json
import os

from train import device as device_module
from train.output.files import write_json
from train.study.spec import StudyError

STATE_NAME = 'study.json'    # the invocations of a study


def now():
    """The time now, as ``study.json`` records it (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


def study_dir(study, runs_root):
    """The folder of a study's runs and state."""
    return os.path.join(runs_root, study.name)


def run_dir(study, runs_root, run):
    """The folder of one run of a study."""
    return os.path.join(runs_root, study.name, run.id)


def load_state(study, runs_root):
    """``study.json`` of a study: ``{'invocations': [...]}``."""
    path = os.path.join(study_dir(study, runs_root), STATE_NAME)
    if not os.path.exists(path):
        return {'invocations': []}
    with open(path) as f:
        return json.load(f)


def save_state(study, runs_root, state):
    """Writes ``study.json`` (atomically)."""
    path = os.path.join(study_dir(study, runs_root), STATE_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, state)


def last_outcomes(state):
    """Each run's outcome in the newest invocation that tried it."""
    out = {}
    for inv in state['invocations']:
        out.update(inv['outcomes'])
    return out


def machine(device_spec):
    """Where and with what the study runs: device, host CPU, versions."""
    try:
        device = device_module.get(device_spec)
    except device_module.DeviceError as e:
        raise StudyError(str(e))
    return {'device': device_module.device_name(device),
            'host': device_module.cpu_name(),
            'versions': device_module.versions('numpy', 'chainer', 'cupy',
                                               'mixnorm')}
