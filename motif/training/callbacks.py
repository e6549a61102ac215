"""wandb dashboards of concept timelines, logged from a fixed set of validation videos."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
import wandb

from motif.explain.figures import attention_maps_figure, concept_heatmap_figure, concept_timeline_figure
from motif.model import explain, fold_views
from motif.training.loggers import wandb_logger
from motif.training.prepare import PreparedData


class ConceptTimelineCallback(pl.Callback):
    """Every ``every_n_epochs`` validation epochs (and the first), for ``num_videos`` fixed validation videos:
    a timeline of the top-k concepts (by global importance G for the predicted class, x axis in seconds),
    a [C, T] concept heatmap, the attention maps of the top concepts (last layer), and one table of the
    classifier's top concepts per class with their weights. Rank 0 only; the maps are computed here,
    never during training steps.
    """

    def __init__(self, data: PreparedData, every_n_epochs: int = 5, num_videos: int = 4, top_k: int = 5,
                 heatmap_concepts: int = 40):
        self.videos = sorted(data.val, key=lambda it: it.video_id)[:num_videos]
        self.class_names, self.concept_names = data.class_names, data.concept_names
        self.every_n_epochs, self.top_k, self.heatmap_concepts = max(1, every_n_epochs), top_k, heatmap_concepts

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        return epoch == 0 or (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == trainer.max_epochs

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = wandb_logger(trainer.loggers)
        if trainer.sanity_checking or not trainer.is_global_zero or logger is None or not self._due(trainer):
            return
        model = pl_module.model
        was_training = model.training
        model.eval()
        payload: dict = {}
        for item in self.videos:
            payload.update(self._video_media(model, item, pl_module.device))
        payload["concepts/top_per_class"] = self._class_table(model)
        payload["trainer/global_step"] = trainer.global_step
        logger.experiment.log(payload)
        model.train(was_training)

    def _video_media(self, model, item, device) -> dict:
        x = item.concepts.float()[None].to(device)
        out = model(x, return_attention=True)
        probs = out.logits[0].softmax(-1)
        k = int(probs.argmax())
        exp = explain(model, out, class_index=k)
        channel_names = model.channel_names(self.concept_names)   # the concepts, then their views (if any)
        top = exp.global_importance[0].topk(min(self.top_k, len(channel_names))).indices
        spans = item.spans.numpy()
        z = out.concepts[0].cpu()
        title = f"predicted '{self.class_names[k]}' (p={float(probs[k]):.2f}), true '{self.class_names[item.label]}'"
        names = [channel_names[c] for c in top.tolist()]
        figures = {
            "timeline": concept_timeline_figure(spans, z[:, top].numpy(), names,
                                                window_importance=exp.window_importance[0].cpu().numpy(), title=title),
            "heatmap": concept_heatmap_figure(spans, z.numpy(), channel_names, max_concepts=self.heatmap_concepts,
                                              order=exp.global_importance[0].argsort(descending=True).tolist()),
        }
        if out.attentions and out.attentions[-1].shape[1] == len(self.concept_names):
            by_concept = fold_views(exp.global_importance[0], len(self.concept_names))
            top_concepts = by_concept.topk(min(3, len(self.concept_names))).indices
            maps = out.attentions[-1][0, top_concepts].cpu().numpy()
            figures["attention"] = attention_maps_figure(spans, maps, [self.concept_names[c] for c in top_concepts],
                                                         title="attention (last layer)")
        key = item.video_id.replace("/", "_")
        media = {f"media/{kind}/{key}": wandb.Image(fig, caption=item.video_id) for kind, fig in figures.items()}
        for fig in figures.values():
            plt.close(fig)
        return media

    def _class_table(self, model) -> wandb.Table:
        weight = model.classifier.weight.detach().cpu()
        table = wandb.Table(columns=["class", "rank", "concept", "weight"])
        channel_names = model.channel_names(self.concept_names)
        for k, name in enumerate(self.class_names):
            values, idx = weight[k].topk(min(self.top_k, weight.shape[1]))
            for rank, (v, c) in enumerate(zip(values.tolist(), idx.tolist()), start=1):
                if v > 0:
                    table.add_data(name, rank, channel_names[c], v)
        return table
