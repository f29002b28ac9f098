"""`root_given`: Brinkmann et al.'s setting, where the root is an input and never scored."""

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks.base import IGNORE_INDEX
from mesainterp.tasks.tree_path import TreePathTask


def test_the_root_is_an_input_but_not_a_target():
    scored = TreePathTask(n_nodes=10, max_depth=4).sample(32, seed=3)
    given = TreePathTask(n_nodes=10, max_depth=4, root_given=True).sample(32, seed=3)
    p0 = given.prompt_len
    assert torch.equal(scored.inputs, given.inputs)
    assert torch.equal(given.inputs[:, p0], given.labels["root"])
    assert torch.equal(scored.targets[:, p0 - 1], scored.labels["root"])
    assert (given.targets[:, p0 - 1] == IGNORE_INDEX).all()
    # Every later target is unchanged: the path below the root, then END.
    assert torch.equal(given.targets[:, p0:], scored.targets[:, p0:])


def test_root_given_must_be_a_bool():
    with pytest.raises(ConfigError, match="root_given"):
        TreePathTask(root_given=1)  # type: ignore[arg-type]
