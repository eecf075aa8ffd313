import json

import pytest
from PIL import Image

from rlcs.data import DataError, load_documents, load_examples, load_sft_conversations, load_texts


def _jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_malformed_json_names_file_and_line(tmp_path):
    source = _jsonl(tmp_path / "rl.jsonl", ['{"domain": "math", "prompt": "1+1", "answer": "2"}', '{"domain": '])
    with pytest.raises(DataError, match=r"rl\.jsonl:2: not valid JSON"):
        load_examples(source)


def test_schema_error_names_the_row(tmp_path):
    rows = [{"domain": "math", "prompt": "1+1", "answer": "2"}, {"domain": "math", "answer": "3"}]
    source = _jsonl(tmp_path / "rl.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError, match=r"rl\.jsonl: row 2: .*prompt"):
        load_examples(source)


def test_a_row_after_blank_lines_is_named_by_its_line_too(tmp_path):
    lines = [json.dumps({"domain": "math", "prompt": "1+1", "answer": "2"}), "", json.dumps({"domain": "math"})]
    with pytest.raises(DataError, match=r"rl\.jsonl: row 2 \(line 3\): .*answer"):
        load_examples(_jsonl(tmp_path / "rl.jsonl", lines))


def test_answers_keep_the_type_and_text_the_file_gave_them(tmp_path):
    """A column of mixed types must not be unified: 5 beside 5.5 stays 5, and CSV's "007" stays a string."""
    rows = [{"domain": "m", "prompt": "a", "answer": 5}, {"domain": "m", "prompt": "b", "answer": 5.5},
            {"domain": "m", "prompt": "c", "answer": "x"}, {"domain": "m", "prompt": "d", "answer": [1, 2]}]
    answers = [e["answer"] for e in load_examples(_jsonl(tmp_path / "rl.jsonl", [json.dumps(r) for r in rows]))]
    assert answers == [5, 5.5, "x", [1, 2]] and type(answers[0]) is int
    (tmp_path / "rl.csv").write_text("domain,prompt,answer,level,difficulty\nm,a,007,2,0.5\nm,b,3.10,,\n")
    examples = load_examples(str(tmp_path / "rl.csv"))
    assert [e["answer"] for e in examples] == ["007", "3.10"]
    assert examples[0]["level"] == 2 and examples[0]["difficulty"] == 0.5 and "level" not in examples[1]


def test_difficulty_out_of_range_is_rejected(tmp_path):
    row = {"domain": "math", "prompt": "1+1", "answer": "2", "difficulty": 1.5}
    with pytest.raises(DataError, match="row 1: difficulty"):
        load_examples(_jsonl(tmp_path / "rl.jsonl", [json.dumps(row)]))


def test_missing_id_gets_a_stable_content_id(tmp_path):
    row = {"domain": "math", "prompt": "1+1", "answer": "2"}
    first = load_examples(_jsonl(tmp_path / "a.jsonl", [json.dumps(row)]))[0]["id"]
    second = load_examples(_jsonl(tmp_path / "b.jsonl", [json.dumps(row)]))[0]["id"]
    assert first == second and first.startswith("math-")


def test_parquet_loads_the_same_rows(tmp_path, suite_dir):
    import datasets

    jsonl = load_examples(str(suite_dir / "eval.jsonl"))
    datasets.Dataset.from_list(jsonl).to_parquet(str(tmp_path / "eval.parquet"))
    assert load_examples(str(tmp_path / "eval.parquet")) == jsonl


def test_sft_rows_need_a_response_and_texts_need_their_column(tmp_path):
    source = _jsonl(tmp_path / "sft.jsonl", [json.dumps({"prompt": "hi"})])
    with pytest.raises(DataError, match="row 1: .*response"):
        load_sft_conversations(source)
    with pytest.raises(DataError, match="no column 'text'"):
        load_texts(source)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_examples(str(tmp_path / "absent.jsonl"))


def test_image_rows_are_an_error_not_a_silent_text_only_row(tmp_path):
    rl = tmp_path / "rl.jsonl"
    rl.write_text('{"domain": "d", "prompt": "p", "answer": 1}\n'
                  '{"domain": "d", "prompt": "How many?", "answer": 3, "images": ["shapes.png"]}\n')
    with pytest.raises(DataError, match=r"rl.jsonl: row 2: .*'images' is not supported"):
        load_examples(str(rl))
    sft = tmp_path / "sft.jsonl"
    sft.write_text('{"prompt": "p", "response": "r", "images": ["a.png"]}\n')
    with pytest.raises(DataError, match=r"sft.jsonl: row 1: .*'images' is not supported"):
        load_sft_conversations(str(sft))
    rl.write_text('{"domain": "d", "prompt": "p", "answer": 1, "image": "chart.png"}\n')  # a hub dataset's column
    with pytest.raises(DataError, match=r"row 1: .*'image' is not supported"):
        load_examples(str(rl))
    docs = tmp_path / "pretrain.jsonl"
    docs.write_text('{"text": "plain"}\n{"text": "A red circle.", "images": ["a.png"]}\n')
    with pytest.raises(DataError, match=r"pretrain.jsonl: row 2: .*'images' is not supported"):
        load_documents(str(docs))
    Image.new("RGB", (28, 28)).save(tmp_path / "a.png")
    assert [(d.text, d.images) for d in load_documents(str(docs), images=True)] == [
        ("plain", []), ("A red circle.", [str((tmp_path / "a.png").resolve())])]
    docs.write_text('{"text": "plain", "messages": [{"role": "user", "content": "hi"}]}\n')  # an extra column
    assert [d.text for d in load_documents(str(docs))] == ["plain"]
    docs.write_text('{"text": "plain"}\n{"text": 3}\n')
    with pytest.raises(DataError, match=r"pretrain.jsonl: row 2: 'text' must be a string"):
        load_documents(str(docs))
    rl.write_text('{"domain": "d", "prompt": "p", "answer": 1, "images": []}\n')
    assert load_examples(str(rl))[0]["images"] == []  # an empty list carries no image to lose


def test_duplicate_ids_name_both_rows(tmp_path):
    given = _jsonl(tmp_path / "given.jsonl", ['{"id": "a", "domain": "d", "prompt": "p", "answer": 1}',
                                              '{"id": "b", "domain": "d", "prompt": "q", "answer": 2}',
                                              '{"id": "a", "domain": "d", "prompt": "r", "answer": 3}'])
    with pytest.raises(DataError, match=r"given.jsonl: rows 1 and 3 have the same id \('a'\)"):
        load_examples(given)
    derived = _jsonl(tmp_path / "derived.jsonl", ['{"domain": "d", "prompt": "p", "answer": 1}',
                                                  '{"domain": "d", "prompt": "p", "answer": 1}'])
    with pytest.raises(DataError, match=r"rows 1 and 2 have the same domain and prompt"):
        load_examples(derived)


def test_a_csv_saved_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    """Spreadsheets write UTF-8 with a BOM: read plainly, the first header would be '\\ufeffid' and the
    row's own id silently replaced by a content id."""
    (tmp_path / "rl.csv").write_bytes("id,domain,prompt,answer\nq1,m,\"a, b\",1\n".encode("utf-8-sig"))
    assert load_examples(str(tmp_path / "rl.csv")) == [{"id": "q1", "domain": "m", "prompt": "a, b", "answer": "1"}]


def test_a_json_file_is_read_as_an_array_of_rows_or_as_json_lines_keeping_types(tmp_path):
    rows = [{"domain": "m", "prompt": "a", "answer": 5}, {"domain": "m", "prompt": "b", "answer": 5.5}]
    (tmp_path / "array.json").write_text(json.dumps(rows))
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("array.json", "lines.json"):
        assert [e["answer"] for e in load_examples(str(tmp_path / name))] == [5, 5.5]
    (tmp_path / "bad.json").write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match=r"bad\.json: a \.json data file must hold an array of row objects"):
        load_examples(str(tmp_path / "bad.json"))
