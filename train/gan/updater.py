"""The GAN's training step (Section 4.5), after the ``dcgan`` updater of
pfnet-research/chainer-gan-lib (``dcgan/updater.py``), which the paper's
"37.7 reported in [46]" points to: one discriminator and one generator
update per iteration on the same fakes, the non-saturating loss
(``softplus(-D(G(z)))`` for the generator; ``softplus(-D(x)) +
softplus(D(G(z)))`` for the discriminator), z from Uniform[-1, 1], real
images scaled to [-1, 1].  The step does not wait for the device: the
batches come from :class:`train.data.DeviceImages`, z is drawn on the
device, and the losses are reported as device arrays that the log averages
only at its trigger.
"""
import chainer
import chainer.functions as F
from chainer import training


class GANUpdater(training.StandardUpdater):

    """One discriminator and one generator update per iteration.

    Args:
        iterator: Yields batches of real images on the device
            (:class:`DeviceImages`).
        gen_optimizer, dis_optimizer: Set-up optimizers of the generator
            and the discriminator.

    """

    def __init__(self, iterator, gen_optimizer, dis_optimizer):
        super(GANUpdater, self).__init__(
            iterator, {'gen': gen_optimizer, 'dis': dis_optimizer})

    def update_core(self):
        opt_gen = self.get_optimizer('gen')
        opt_dis = self.get_optimizer('dis')
        gen, dis = opt_gen.target, opt_dis.target
        x_real = self.get_iterator('main').next()
        n = len(x_real)
        x_fake = gen(gen.make_hidden(n, gen.xp))
        y_real, y_fake = dis(x_real), dis(x_fake)
        loss_gen = F.sum(F.softplus(-y_fake)) / n  # non-saturating
        loss_dis = (F.sum(F.softplus(-y_real)) +
                    F.sum(F.softplus(y_fake))) / n
        gen.cleargrads()
        loss_gen.backward()
        opt_gen.update()
        x_fake.unchain_backward()  # the discriminator's loss stops at x_fake
        dis.cleargrads()
        loss_dis.backward()
        opt_dis.update()
        chainer.report({'gen/loss': loss_gen.array,
                        'dis/loss': loss_dis.array})
