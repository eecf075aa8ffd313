import re

import pytest

from rewards.extract import extract_answer
from rlcs import tasks


def test_generation_is_deterministic_for_a_seed():
    first = tasks.generate(5, seed=3)
    second = tasks.generate(5, seed=3)
    assert [p.sft_row() for p in first] == [p.sft_row() for p in second]
    other = tasks.generate(5, seed=4)
    assert [p.id for p in first] != [p.id for p in other]


def test_every_domain_and_level_is_generated_without_repeats():
    problems = tasks.generate(6, seed=0)
    for domain in tasks.DOMAINS:
        for level in tasks.LEVELS:
            ids = [p.id for p in problems if p.domain == domain and p.level == level]
            assert len(ids) == 6 and len(set(ids)) == 6, (domain, level)


def test_excluded_ids_never_appear():
    held_out = {p.id for p in tasks.generate(5, seed=1)}
    train = tasks.generate(30, seed=2, exclude_ids=held_out)
    assert held_out.isdisjoint(p.id for p in train)


def _labels(prompt: str) -> list[str]:
    """The labels of the list under a prompt's first line, checked to be consecutive letters."""
    labels = [line.split(": ")[0] for line in prompt.split("\n")[1:]]
    first = ord(labels[0])
    assert labels == [chr(first + i) for i in range(len(labels))] and labels[-1] <= "Z", prompt
    return labels


def _items(prompt: str) -> list[str]:
    """The labelled list under a prompt's first line: 'K: x', 'L: y', ... in order."""
    _labels(prompt)
    return [line.split(": ", 1)[1] for line in prompt.split("\n")[1:]]


def _true_answer(problem: tasks.Problem) -> str:
    """Recompute the answer from the prompt alone, independently of the generator."""
    prompt = problem.prompt
    if problem.domain == "arithmetic":
        return str(sum(int(item) for item in _items(prompt)))
    if problem.domain == "algebra":
        unknown, equation = re.fullmatch(r"Solve for (\w): (.*)", prompt).groups()
        for x in range(-100, 101):
            left, right = (side.replace(unknown, f"*({x})") for side in equation.split(" = "))
            left, right = (s if not s.startswith("*") else s[1:] for s in (left, right))
            if eval(left) == eval(right):  # noqa: S307 - our own generated equation, not model output
                return str(x)
        raise AssertionError(f"no integer solution for {equation}")
    if problem.domain == "choice":
        options = dict(re.findall(r"\(([A-E])\) (\d+)", prompt))
        values = {k: int(v) for k, v in options.items()}
        if "largest" in prompt:
            return max(values, key=values.get)
        if "smallest" in prompt:
            return min(values, key=values.get)
        a, b = map(int, re.search(r"equals (\d+) \+ (\d+)", prompt).groups())
        return next(k for k, v in values.items() if v == a + b)
    if problem.domain == "transcription":
        symbols = _items(prompt)
        return " ".join(symbols[::-1] if prompt.startswith("Reverse") else symbols)
    if problem.domain == "counting":
        target = re.match(r"How many times does (\w) appear in the list\?", prompt).group(1)
        return str(_items(prompt).count(target))
    raise AssertionError(problem.domain)


@pytest.mark.parametrize("domain", sorted(tasks.DOMAINS))
def test_answers_are_correct_and_every_trace_boxes_the_answer(domain):
    for problem in tasks.generate(25, seed=11, domains=[domain]):
        assert problem.answer == _true_answer(problem), problem.prompt
        extraction = extract_answer(problem.response())
        assert extraction.answer == problem.answer, (problem.prompt, extraction)


def test_arithmetic_traces_read_every_item_by_label_and_keep_a_true_running_total():
    for problem in tasks.generate(30, seed=5, domains=["arithmetic"]):
        terms = [int(t) for t in _items(problem.prompt)]
        assert len(terms) == {1: 3, 2: 4, 3: 6, 4: 8}[problem.level]
        total = 0
        for label, term, step in zip(_labels(problem.prompt), terms, problem.steps):
            total += term
            assert step == f"{label}: {term}, total {total}", problem
        assert problem.steps[-1] == f"The sum is {total}."


def test_pretraining_drills_state_true_facts_and_never_a_task_prompt():
    import random

    from rlcs.tasks import drills

    rng = random.Random(0)
    for _ in range(50):
        for fact in drills.facts(rng):
            if m := re.fullmatch(r"(-?\d+) ([-+*]) (-?\d+) = (-?\d+)", fact):
                a, op, b, c = m.groups()
                assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op] == int(c), fact
            else:
                a, word, b = re.fullmatch(r"(\d+) is (larger|smaller) than (\d+)", fact).groups()
                assert (int(a) > int(b)) == (word == "larger"), fact
        text = drills.document(rng)
        assert not any(lead in text for lead in ("Add up", "Solve for", "Which option", "How many", "the list:"))


def test_every_level_has_far_more_prompts_than_a_split_draws():
    """A held-out item must be new, not the complement of a small space the training split exhausts:
    asking for 1500 problems per level gets 1500 distinct ones (the generator skips repeats)."""
    problems = tasks.generate(1500, seed=0)
    for domain in tasks.DOMAINS:
        for level in tasks.LEVELS:
            assert sum(p.domain == domain and p.level == level for p in problems) == 1500, (domain, level)


def test_lookup_drills_read_back_every_item_by_its_label():
    import random

    from rlcs.tasks import drills

    rng = random.Random(0)
    for _ in range(50):
        listed, again = drills.lookup_document(rng).removeprefix("List:\n").split("\nAgain:\n")
        items, reads = listed.split("\n"), again.split("\n")
        assert sorted(items) == sorted(reads) and len({i.split(": ")[0] for i in items}) == len(items)
        assert not any(lead in listed for lead in ("Add up", "Solve for", "Which option", "How many", "the list:"))


def test_unknown_domain_and_level_are_rejected():
    import random

    with pytest.raises(ValueError, match="unknown task domain"):
        tasks.make_problem("poetry", 1, random.Random(0))
    with pytest.raises(ValueError, match="level"):
        tasks.make_problem("arithmetic", 9, random.Random(0))


def test_algebra_traces_end_by_stating_the_unknown():
    for problem in tasks.generate(10, seed=9, domains=["algebra"]):
        letter = problem.prompt.split(":")[0].split()[-1]
        assert problem.steps[-1].endswith(f"so {letter} = {problem.answer}."), problem.steps



def test_unworked_sft_rows_are_added_per_level_with_correct_answers_and_no_steps(tmp_path):
    import json

    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    recipe = validate_recipe(
        {"output_dir": str(tmp_path), "seed": 3, "domains": ["arithmetic", "choice"], "eval_per_level": 3,
         "rl_per_level": 2, "sft_per_level": 4, "pretrain_per_level": 2, "sft_unworked_per_level": {3: 5, 4: 0}},
        SuiteRecipe,
    )
    data_stage.run(recipe)
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    unworked = [r for r in rows if tasks.UNWORKED_REASONING in r["response"]]
    worked = [r for r in rows if tasks.UNWORKED_REASONING not in r["response"]]
    # every worked row is still there; the unworked ones are extra, only at level 3, 5 per domain
    assert len(worked) == 2 * 4 * 4
    assert sorted((r["domain"], r["level"]) for r in unworked) == [("arithmetic", 3)] * 5 + [("choice", 3)] * 5
    for row in unworked:
        assert row["response"].startswith(f"<think>{tasks.UNWORKED_REASONING}</think><answer>")
        assert extract_answer(row["response"]).answer == row["answer"]
    held_out = {json.loads(line)["id"] for line in (tmp_path / "eval.jsonl").read_text().splitlines()}
    assert held_out.isdisjoint(r["id"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("value, message", [(True, "sft_per_level"), ({1: True}, "sft_per_level"),
                                            ("7", "sft_per_level"), ({}, "empty mapping")])
def test_sft_rows_per_level_must_be_whole_counts(tmp_path, value, message):
    from rlcs.config import RecipeError, SuiteRecipe, validate_recipe

    with pytest.raises(RecipeError, match=message):
        validate_recipe({"output_dir": str(tmp_path), "sft_per_level": value}, SuiteRecipe)


def test_repeated_levels_are_rejected(tmp_path):
    from rlcs.config import RecipeError, SuiteRecipe, validate_recipe

    with pytest.raises(RecipeError, match="levels repeat"):
        validate_recipe({"output_dir": str(tmp_path), "levels": [1, 1, 2]}, SuiteRecipe)


@pytest.mark.parametrize("key", ["sft_unworked_per_level", "sft_per_level"])
@pytest.mark.parametrize("shares, message", [({5: 10}, "not in levels"), ({2: -1}, ">= 0")])
def test_per_level_counts_at_unknown_levels_or_negative_are_rejected(tmp_path, key, shares, message):
    from rlcs.config import RecipeError, SuiteRecipe, validate_recipe

    with pytest.raises(RecipeError, match=f"{key}.*{message}"):
        validate_recipe({"output_dir": str(tmp_path), key: shares}, SuiteRecipe)


def test_sft_rows_per_level_mapping_draws_those_counts_and_the_same_rows_as_a_single_count(tmp_path):
    import json

    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    def sft_rows(out, per_level):
        recipe = validate_recipe(
            {"output_dir": str(out), "seed": 5, "domains": ["arithmetic", "counting"], "eval_per_level": 2,
             "rl_per_level": 1, "sft_per_level": per_level, "pretrain_per_level": 1}, SuiteRecipe)
        data_stage.run(recipe)
        return [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]

    single = sft_rows(tmp_path / "single", 3)
    mapped = sft_rows(tmp_path / "mapped", {1: 6, 2: 3, 4: 1})
    counts = {(d, level): sum(r["domain"] == d and r["level"] == level for r in mapped)
              for d in ("arithmetic", "counting") for level in (1, 2, 3, 4)}
    assert counts == {("arithmetic", 1): 6, ("arithmetic", 2): 3, ("arithmetic", 3): 0, ("arithmetic", 4): 1,
                      ("counting", 1): 6, ("counting", 2): 3, ("counting", 3): 0, ("counting", 4): 1}
    # a level's rows come from that level's own seed: the first 3 of six are the single count's 3
    for domain in ("arithmetic", "counting"):
        assert ([r["id"] for r in mapped if r["domain"] == domain and r["level"] == 1][:3]
                == [r["id"] for r in single if r["domain"] == domain and r["level"] == 1])


def test_a_draw_that_runs_out_of_distinct_problems_is_reported(tmp_path, monkeypatch, capsys):
    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    real = tasks.generate

    def small_space(count, seed, domains=None, levels=tasks.LEVELS, exclude_ids=None, **kwargs):
        # as if arithmetic level 1 held only 2 problems outside the held-out split
        rows = real(count, seed, domains, levels, exclude_ids, **kwargs)
        kept = [p for p in rows if (p.domain, p.level) != ("arithmetic", 1)]
        return kept + [p for p in rows if (p.domain, p.level) == ("arithmetic", 1)][:2]

    monkeypatch.setattr(data_stage.tasks, "generate", small_space)
    recipe = validate_recipe({"output_dir": str(tmp_path), "seed": 1, "domains": ["arithmetic", "counting"],
                              "eval_per_level": 1, "rl_per_level": 1, "sft_per_level": {1: 5, 2: 3},
                              "pretrain_per_level": 1}, SuiteRecipe)
    data_stage.run(recipe)
    note = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "sft arithmetic level 1: 2 of 5" in note[0]
    assert "counting" not in note[0] and "level 2" not in note[0]  # only the short draw is named


def test_rl_prompts_per_level_mapping_draws_those_counts_and_a_single_count_is_the_same_mapping(tmp_path):
    import json

    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    def rl_rows(out, per_level):
        recipe = validate_recipe(
            {"output_dir": str(out), "seed": 5, "domains": ["arithmetic", "counting"], "eval_per_level": 2,
             "rl_per_level": per_level, "sft_per_level": 1, "pretrain_per_level": 1}, SuiteRecipe)
        data_stage.run(recipe)
        return [json.loads(line) for line in (out / "rl.jsonl").read_text().splitlines()]

    single = rl_rows(tmp_path / "single", 3)
    assert single == rl_rows(tmp_path / "mapped-evenly", {1: 3, 2: 3, 3: 3, 4: 3})  # row for row, in order
    skewed = rl_rows(tmp_path / "skewed", {1: 7, 3: 2})
    counts = {(r["domain"], r["level"]) for r in skewed}
    assert counts == {("arithmetic", 1), ("arithmetic", 3), ("counting", 1), ("counting", 3)}
    assert sum(r["level"] == 1 for r in skewed) == 14 and sum(r["level"] == 3 for r in skewed) == 4
    held_out = {json.loads(line)["id"] for line in (tmp_path / "skewed" / "eval.jsonl").read_text().splitlines()}
    assert not held_out & {r["id"] for r in skewed}
    with pytest.raises(Exception, match="rl_per_level names levels \\[5\\]"):
        validate_recipe({"output_dir": str(tmp_path), "rl_per_level": {5: 1}}, SuiteRecipe)
