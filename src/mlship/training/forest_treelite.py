"""A ``Forest`` (``forests``) as a Treelite model, for TL2cgen to write as C.

The same reading of the fitted estimator feeds both emitters: ``forest_onnx`` writes it as the
twin's ``TreeEnsemble``, this module hands it to Treelite's model builder. So the compiled trees
take the twin's splits, thresholds (float64), NaN directions and leaf values, and read the
matrix the twin's front computes (where the library rounds its input to float32, the front
already has). Treelite's own scikit-learn importer is not used for forests: it ignores where a
forest's trees send a missing value, and in 4.1.2 it cannot read a forest under numpy 2.

Every node sends a missing value left here, and the caller must keep NaN away from these trees
(``CompiledTreesBackend`` scores such a batch with the twin). Both directions are correct only
through a two-test branch in TL2cgen's quantized C (``present && rank <= t``); left alone it is
one test (a missing cell's rank, -1, is below every threshold's), and OJ's forest walked 1,000
rows in 8 ms rather than 11-13.

Only a random forest's links are written (hist gradient boosting goes through Treelite's
importer, which follows its trees' NaN directions); the output per row is what
``CompiledTreesBackend`` expects: one value for a binary model (the second class's
probability) or a regression, one per class otherwise.
"""

from __future__ import annotations

from typing import Any

from mlship.training.forests import Forest, Tree, UnsupportedTreeError


def treelite_model(forest: Forest, features: int) -> Any:
    """The Treelite model of ``forest``, reading a matrix of ``features`` columns, no NaN."""
    from treelite.model_builder import Metadata, ModelBuilder, PostProcessorFunc, TreeAnnotation

    task, postprocessor, per_class = _task(forest)
    averaged = forest.divisor != 1.0
    if forest.strict or forest.base.any() or forest.divisor not in (1.0, len(forest.trees)):
        raise UnsupportedTreeError("compiled trees for strict splits, a base or a partial mean")
    k = forest.n_targets
    builder = ModelBuilder(
        threshold_type="float64",
        leaf_output_type="float64",
        metadata=Metadata(
            num_feature=features,
            task_type=task,
            average_tree_output=averaged,
            num_target=1,
            num_class=[k],
            leaf_vector_shape=(1, 1 if per_class else k),
        ),
        tree_annotation=TreeAnnotation(
            num_tree=len(forest.trees),
            target_id=[0] * len(forest.trees),
            class_id=[0 if per_class else -1] * len(forest.trees),  # -1: a leaf holds each class
        ),
        postprocessor=PostProcessorFunc(postprocessor),
        base_scores=[float(b) for b in forest.base],
    )
    for tree in forest.trees:
        _add_tree(builder, tree, per_class)
    return builder.commit()


def _task(forest: Forest) -> tuple[str, str, bool]:
    """Treelite's task type, postprocessor and whether each tree adds to one class only."""
    if forest.link == "identity":
        return "kRegressor", "identity", True
    if forest.link == "complement":
        return "kBinaryClf", "identity", True
    if forest.link == "proba":
        return "kMultiClf", "identity", False
    raise UnsupportedTreeError(f"compiled trees for the link {forest.link!r}")


def _add_tree(builder: Any, tree: Tree, per_class: bool) -> None:
    builder.start_tree()
    for node in range(len(tree.feature)):
        builder.start_node(node)
        if tree.feature[node] < 0:
            values = tree.value[node]
            builder.leaf(float(values[0]) if per_class else [float(v) for v in values])
        else:
            builder.numerical_test(
                int(tree.feature[node]),
                float(tree.threshold[node]),
                True,  # NaN never reaches these trees (the module's docstring)
                "<=",
                int(tree.left[node]),
                int(tree.right[node]),
            )
        builder.end_node()
    builder.end_tree()
