"""Head roles, lens and direct effects of the shipped tree-path model: what is found.

An outside analysis of this model reported: L1H1 attends 0.99 from the goal token
to the edge into the goal; L4H1 carries the goal's parent to the first answer
position; L0H1 and L4H1 move the goal; L1H0 / L3H0 look up the children of the
current node at the answer positions (after Brinkmann et al. 2024). This pins what
`head_role_table` finds (64 examples, mean ablation), with its ablation verdicts,
and that its random-init twin gets no role. Attention findings are pinned as
assigned; the ablation verdicts as they came out, including the roles whose
single-head, single-position ablation moves the answers by less than MIN_DROP.
"""

from __future__ import annotations

import pytest

from mesainterp.mechanism import MIN_MASS, RoleTable, compare_lenses, head_role_table
from mesainterp.zoo import control_twin, load_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def found() -> tuple[RoleTable, RoleTable]:
    loaded = load_model("tree-path")
    kw = {"n": 64, "n_boot": 500, "steps": 3}
    table = head_role_table(loaded.model, loaded.task, **kw)
    return table, head_role_table(control_twin(loaded.config), loaded.task, **kw)


def _row(table: RoleTable, head: str, role: str, relation: str):  # type: ignore[no-untyped-def]
    rows = [
        r
        for r in table.assigned()
        if (r.head_name, r.query_role, r.relation) == (head, role, relation)
    ]
    assert rows, f"{head} @ {role}: {relation} not assigned"
    return rows[0]


def test_trained_tree_path_roles(found: tuple[RoleTable, RoleTable]) -> None:
    table, _ = found
    # The deduction step at the goal token: L1H1 reads the edge into the goal.
    into_goal = _row(table, "L1H1", "goal", "edge into current = edge into goal ancestor 0")
    assert into_goal.ci_low > 0.95
    # Edge-token concatenation: L0H1 reads each edge's parent into its child token.
    assert _row(table, "L0H1", "edge child tokens", "previous token").supported
    # Children of the current node, looked up at the answer positions.
    assert _row(table, "L1H0", "answer 1", "edges out of current").supported
    # Goal movement to the first answer position.
    assert _row(table, "L4H1", "answer 1", "goal").ci_low >= MIN_MASS


def test_trained_model_control_twin_has_no_roles(found: tuple[RoleTable, RoleTable]) -> None:
    _, control = found
    assert control.labels() == set()


def test_tuned_lens_not_worse_than_logit_lens_held_out() -> None:
    loaded = load_model("tree-path")
    task = loaded.task
    answers = slice(task.prompt_len - 1, None)
    train, test = task.sample(256, seed=2).inputs, task.sample(128, seed=1).inputs
    result = compare_lenses(loaded.model, train, test, positions=answers)
    for plain, tuned in zip(result.logit_lens_kl, result.tuned_lens_kl, strict=True):
        assert tuned <= plain + 1e-4
