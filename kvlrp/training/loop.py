"""The training loop: one ``tf.function`` step run by a ``tf.distribute`` strategy.

Keras 3.15's ``Model.fit`` fails under ``MultiWorkerMirroredStrategy`` (it reduces nested
batches and scalar metrics with ``axis=0``; keras-team/keras#20585), so kvlrp runs this small
loop under every strategy: the same code path for one device, mirrored replicas and workers.
The loss of each replica is its summed clip cross-entropy divided by the global batch size,
so the gradients the optimizer all-reduces (sums) over replicas are those of the batch mean;
it is scaled by the optimizer (``scale_loss``: a Keras ``LossScaleOptimizer`` under
``mixed_float16``, unchanged otherwise), whose ``apply_gradients`` unscales the gradients.
BatchNormalization moving statistics, which each replica updates from its own sub-batches,
are averaged over all replicas at the end of every epoch, so that every replica and worker
holds the same model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)

#: What ``clips_per_second`` measures.
THROUGHPUT = (
    "training clips (over all replicas) per second of the epoch's wall time from building its "
    "input pipeline to the end of its last step: clip decoding and augmentation, forward, "
    "backward and update, and, in the first epoch run, tracing the step; not validation, "
    "checkpoints or callbacks"
)


def run_epochs(
    model: keras.Model,
    dataset: tf.data.Dataset | Callable[[int], tf.data.Dataset],
    strategy: tf.distribute.Strategy,
    *,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    global_batch_size: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
) -> None:
    """Train ``model`` (compiled, with its optimizer) for epochs ``initial_epoch..epochs-1``.

    Parameters
    ----------
    model
        Softmax classifier created under ``strategy.scope()``, compiled with an optimizer.
    dataset
        Repeating ``(clips, int labels)`` batches of ``global_batch_size``, or a function
        ``epoch (0-based) -> dataset`` whose dataset is read from its start in that epoch (so
        an epoch's batches do not depend on the epoch a run started at).
    strategy
        The distribution strategy the model was created under.
    epochs, initial_epoch, steps_per_epoch
        As in ``keras.Model.fit``.
    global_batch_size
        Clips per step over all replicas.
    callbacks
        Keras callbacks; they get ``loss`` and ``accuracy`` (mean over the epoch's clips) and
        ``clips_per_second`` (see :data:`THROUGHPUT`) in ``on_epoch_end`` logs and may set
        ``model.stop_training``.
    verbose
        0: silent, 1: progress bar, 2: one line per epoch.
    """
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    per_epoch = callable(dataset) and not isinstance(dataset, tf.data.Dataset)
    iterator = None if per_epoch else iter(strategy.experimental_distribute_dataset(dataset))
    train_step = _make_train_step(model, strategy, global_batch_size)
    sync_statistics = _make_statistics_sync(model, strategy)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks), model=model, add_history=False, add_progbar=False
    )
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        start = time.perf_counter()
        if per_epoch:
            iterator = iter(strategy.experimental_distribute_dataset(dataset(epoch)))
        if verbose:
            logger.info("Epoch %d/%d", epoch + 1, epochs)
        progbar = keras.utils.Progbar(steps_per_epoch, verbose=verbose)
        loss_sum = correct = count = 0.0
        for step in range(steps_per_epoch):
            batch_loss, batch_correct, batch_count = (float(v) for v in train_step(iterator))
            loss_sum, correct, count = (
                loss_sum + batch_loss, correct + batch_correct, count + batch_count
            )
            progbar.update(
                step + 1, [("loss", loss_sum / count), ("accuracy", correct / count)],
                finalize=False,
            )
        sync_statistics()
        seconds = time.perf_counter() - start
        logs = {"loss": loss_sum / count, "accuracy": correct / count}
        progbar.update(steps_per_epoch, list(logs.items()), finalize=True)
        logs["clips_per_second"] = count / seconds
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()


def _make_train_step(
    model: keras.Model, strategy: tf.distribute.Strategy, global_batch: int
) -> Callable[[Iterator[Any]], list[tf.Tensor]]:
    """A compiled step: forward, backward, optimizer update; returns summed loss, hits, count."""
    variables = model.trainable_variables

    def replica_step(clips, labels):
        labels = tf.cast(labels, tf.int32)
        with tf.GradientTape() as tape:
            probs = model(clips, training=True)
            per_clip = keras.losses.sparse_categorical_crossentropy(labels, probs)
            loss = tf.reduce_sum(per_clip) / float(global_batch)
            scaled = model.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        grads = tape.gradient(scaled, variables)
        model.optimizer.apply_gradients(zip(grads, variables))
        hits = tf.cast(tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int32), labels), "float32")
        n = tf.cast(tf.shape(labels)[0], "float32")
        return tf.reduce_sum(per_clip), tf.reduce_sum(hits), n

    @tf.function
    def train_step(iterator):
        clips, labels = next(iterator)
        per_replica = strategy.run(replica_step, args=(clips, labels))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica]

    return train_step


def _make_statistics_sync(
    model: keras.Model, strategy: tf.distribute.Strategy
) -> Callable[[], None]:
    """A function averaging BatchNormalization moving statistics over all replicas."""
    moving = [
        v for layer in _all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]
    if not moving or strategy.num_replicas_in_sync == 1:
        return lambda: None

    def replica_sync():
        context = tf.distribute.get_replica_context()
        means = context.all_reduce(
            tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in moving]
        )
        for variable, mean in zip(moving, means):
            variable.assign(mean)

    @tf.function
    def sync():
        strategy.run(replica_sync)

    return sync


def _all_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """``layer`` and, recursively, the layers of any nested model."""
    yield layer
    for sub in getattr(layer, "layers", []):
        yield from _all_layers(sub)
