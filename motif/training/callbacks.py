"""wandb dashboards of concept timelines, logged as data from a fixed set of validation videos."""

from __future__ import annotations

import io
import random

import pytorch_lightning as pl
import torch
import wandb
from PIL import Image

from motif.model import explain, fold_views
from motif.plots.background import BackgroundRenderer
from motif.plots.colours import concept_colours
from motif.plots.figures import attention_maps_figure, concept_heatmap_figure, concept_timeline_figure
from motif.sequences.prepare import PreparedData
from motif.training.loggers import wandb_logger

WINDOW_COLUMNS = ["video", "window", "start_s", "end_s", "concept", "z", "r", "pi"]


def videos_per_class(items: list, num_videos: int, seed: int) -> list:
    """Up to ``num_videos`` items covering the classes: one per class (a seeded random pick within each class,
    classes in label order), then further rounds of picks while videos remain."""
    rng = random.Random(seed)
    by_class: dict[int, list] = {}
    for item in sorted(items, key=lambda it: it.video_id):
        by_class.setdefault(int(item.label), []).append(item)
    for members in by_class.values():
        rng.shuffle(members)
    chosen = []
    while len(chosen) < num_videos and any(by_class.values()):
        for label in sorted(by_class):
            if by_class[label] and len(chosen) < num_videos:
                chosen.append(by_class[label].pop(0))
    return chosen


class ConceptTimelineCallback(pl.Callback):
    """Concept timelines of ``num_videos`` validation videos (one per class, seeded), logged as data.

    Every ``every_n_epochs`` validation epochs (and the first and last), for each video: a
    ``wandb.Table`` of per-window rows (video, window, start_s, end_s, concept, z, r, pi) of its
    ``table_concepts`` most important concepts (by global importance G for the predicted class), a
    line-series chart of the top-k concepts' z over time (seconds) and a line chart of π, and a
    table-backed [C, T] heatmap of z (the windows table itself). At the end of training, as a supplement:
    one table of each class's top classifier weights, and PNG figures (timeline, heatmap, attention maps of
    the top concepts, saved with a tight bounding box so legends are whole) drawn in a worker process while
    the run goes on (baselines); ``log_figures()`` waits for them and logs them, and must be called before
    the wandb run finishes. Rank 0 only; the maps are computed here, never during training steps.
    """

    def __init__(self, data: PreparedData, every_n_epochs: int = 5, num_videos: int = 4, top_k: int = 5,
                 table_concepts: int = 40, seed: int = 0):
        self.videos = videos_per_class(data.val, num_videos, seed)
        self.class_names, self.concept_names = data.class_names, data.concept_names
        self.every_n_epochs, self.top_k, self.table_concepts = max(1, every_n_epochs), top_k, table_concepts
        self.renderer, self._figure_run, self._captions = BackgroundRenderer(), None, {}

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        return epoch == 0 or (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == trainer.max_epochs

    def _logger(self, trainer: pl.Trainer):
        logger = wandb_logger(trainer.loggers)
        if trainer.sanity_checking or not trainer.is_global_zero or logger is None:
            return None
        return logger

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = self._logger(trainer)
        if logger is None or not self._due(trainer):
            return
        payload: dict = {}
        for item, view in self._views(pl_module):
            payload.update(self._video_data(item, view))
        payload["trainer/global_step"] = trainer.global_step
        logger.experiment.log(payload)

    @torch.no_grad()
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = self._logger(trainer)
        if logger is None:
            return
        logger.experiment.log({"concepts/top_per_class": self._class_table(pl_module.model)})
        for item, view in self._views(pl_module):
            self._submit_video_figures(item, view)
        self._figure_run = logger.experiment

    def log_figures(self) -> None:
        """Wait for the end-of-training figures drawn in the background and log them to the run (no-op when
        none were queued)."""
        rendered = self.renderer.results()
        if self._figure_run is not None and rendered:
            self._figure_run.log({key: wandb.Image(Image.open(io.BytesIO(png)), caption=self._captions[key])
                                  for key, png in rendered.items()})
        self._figure_run = None

    def _views(self, pl_module: pl.LightningModule):
        """(item, view) per logged video; view: a name and a colour per channel of the concept axis, z [T, C],
        r [T, C], π [T], G [C], the predicted class, its probability and the last layer's per-concept
        attention maps [C, T, T] (None when the variant has none)."""
        model = pl_module.model
        was_training = model.training
        model.eval()
        try:
            for item in self.videos:
                out = model(item.concepts.float()[None].to(pl_module.device), return_attention=True)
                probs = out.logits[0].softmax(-1)
                k = int(probs.argmax())
                e = explain(model, out, class_index=k)
                has_maps = bool(out.attentions) and model.variant_spec.per_concept_maps
                attention = out.attentions[-1][0].cpu() if has_maps else None
                names = model.channel_names(self.concept_names)  # the concepts, then their views (if any)
                yield item, {"names": names, "colours": concept_colours(names), "z": out.concepts[0].cpu(),
                             "r": e.relevance[0].cpu(), "pi": e.window_importance[0].cpu(),
                             "G": e.global_importance[0].cpu(), "k": k, "p": float(probs[k]), "attention": attention}
        finally:
            model.train(was_training)

    def _key(self, item) -> str:
        return item.video_id.replace("/", "_")

    def _title(self, item, view) -> str:
        return (f"{item.video_id}: predicted '{self.class_names[view['k']]}' (p={view['p']:.2f}), "
                f"true '{self.class_names[item.label]}'")

    def _video_data(self, item, view) -> dict:
        key, spans = self._key(item), item.spans.float()
        g = view["G"]
        shown = g.argsort(descending=True)[:min(self.table_concepts, view["z"].shape[1])].tolist()
        # plain lists: no tensor indexing per cell; optional=False: wandb checks each cell against one type, not
        # a union with None (3-4x faster tables, the cost of these dashboards inside the training loop)
        z, r, pi, bounds = view["z"].tolist(), view["r"].tolist(), view["pi"].tolist(), spans.tolist()
        rows = [[item.video_id, t, bounds[t][0], bounds[t][1], view["names"][c], z[t][c], r[t][c], pi[t]]
                for c in shown for t in range(len(z))]
        centres = spans.mean(dim=1).tolist()
        top = shown[:self.top_k]
        windows = wandb.Table(columns=WINDOW_COLUMNS, data=rows, optional=False)
        pi_table = wandb.Table(columns=["time_s", "pi"], data=[list(pair) for pair in zip(centres, pi)], optional=False)
        return {
            f"timeline/{key}/windows": windows,
            f"timeline/{key}/z": wandb.plot.line_series(
                xs=centres, ys=[[row[c] for row in z] for c in top], keys=[view["names"][c] for c in top],
                title=self._title(item, view), xname="time (s)"),
            f"timeline/{key}/pi": wandb.plot.line(pi_table, "time_s", "pi",
                                                  title=f"window importance π, {item.video_id}"),
            f"timeline/{key}/heatmap": wandb.plot_table(
                "wandb/confusion_matrix/v1", windows, {"Actual": "concept", "Predicted": "window", "nPredictions": "z"},
                {"title": f"concept activations z [C, T], {item.video_id}"}),
        }

    def _submit_video_figures(self, item, view) -> None:
        spans = item.spans.numpy()
        z, g = view["z"], view["G"]
        top = g.topk(min(self.top_k, z.shape[1])).indices.tolist()
        key = self._key(item)
        figures = {
            "timeline": (concept_timeline_figure, (spans, z[:, top].numpy(), [view["names"][c] for c in top]),
                         {"window_importance": view["pi"].numpy(), "title": self._title(item, view),
                          "colours": [view["colours"][c] for c in top]}),
            "heatmap": (concept_heatmap_figure, (spans, z.numpy(), view["names"]),
                        {"max_concepts": self.table_concepts, "order": g.argsort(descending=True).tolist(),
                         "colours": view["colours"]}),
        }
        if view["attention"] is not None:
            by_concept = fold_views(g, len(self.concept_names))   # a concept's G summed over its views
            chosen = by_concept.topk(min(3, len(self.concept_names))).indices.tolist()
            figures["attention"] = (attention_maps_figure,
                                    (spans, view["attention"][chosen].numpy(), [self.concept_names[c] for c in chosen]),
                                    {"title": "attention (last layer)"})
        for kind, (builder, args, kwargs) in figures.items():
            self._captions[f"media/{kind}/{key}"] = item.video_id
            self.renderer.submit(f"media/{kind}/{key}", builder, *args, **kwargs)

    def _class_table(self, model) -> wandb.Table:
        weight = model.classifier.weight.detach().cpu()
        names = model.channel_names(self.concept_names)
        table = wandb.Table(columns=["class", "rank", "concept", "weight"])
        for k, name in enumerate(self.class_names):
            values, idx = weight[k].topk(min(self.top_k, weight.shape[1]))
            for rank, (v, c) in enumerate(zip(values.tolist(), idx.tolist()), start=1):
                if v > 0:
                    table.add_data(name, rank, names[c], v)
        return table
