"""The synthetic worlds: small videos of coloured shapes with per-frame concept ground truth, and a
feature-level relative-order task. One concern per module:

- ``vocabulary``: objects, concepts, the time-mirrored classes and the geometry that defines them;
- ``config``: ``WorldConfig`` (a generated world) and ``BackboneTrainingConfig``, without torch;
- ``scripts``: object tracks, video scripts, placement of class events, distractors, random scenes;
- ``render``: drawing frames and measuring which concepts are visible in each;
- ``truth``: per-frame ground truth of a world folder (``VideoTruth``, ``WorldGroundTruth``, intervals);
- ``generate``: ``generate_world`` (mp4 files, splits, description files) and labelled frames;
- ``order_task``: the window-feature order task of spec section 8 (no files);
- ``backbone_training``: training the world's open_clip backbone ("motif-world-vit");
- ``errors``: ``WorldError``.

Importing this package loads none of its modules; ``backbone_training`` alone needs open_clip.
"""
