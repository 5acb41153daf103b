"""The label decoder's rules: threshold, most probable class, the user's labels, the formats it reads."""

from __future__ import annotations

import json

import pytest

from processing_scripts.serving.errors import RequestError
from processing_scripts.serving.label_decoder import LabelDecoder, read_scores, transform_fn


def test_binary_is_the_second_label_above_one_half():
    decoder = LabelDecoder("binary", ["no", "yes"])
    body, out_type = decoder.encode(decoder.decode([0.5, 0.75, 0.2]), "text/csv")
    assert out_type == "text/csv"
    assert body == "no,0.5\nyes,0.75\nno,0.8\n"


def test_multiclass_is_the_most_probable_class_first_on_ties():
    decoder = LabelDecoder("multiclass", ["setosa", "versicolor", "virginica"])
    rows = decoder.decode([[0.2, 0.4, 0.4], [0.7, 0.2, 0.1]])
    answer = json.loads(decoder.encode(rows, "application/json")[0])["predictions"]
    assert [a["label"] for a in answer] == ["versicolor", "setosa"]
    assert answer[1]["probabilities"] == {"setosa": 0.7, "versicolor": 0.2, "virginica": 0.1}
    with pytest.raises(RequestError, match="expected 3 class probabilities"):
        decoder.decode([0.3])


def test_regression_is_the_value_and_labels_are_quoted_in_csv():
    regression = LabelDecoder("regression", None)
    assert regression.encode(regression.decode([9.5, 7.0]), "text/csv")[0] == "9.5\n7.0\n"
    assert json.loads(regression.encode(regression.decode([9.5]), "application/json")[0]) == {"predictions": [{"score": 9.5}]}
    quoted = LabelDecoder("binary", ["no, never", 'say "yes"'])
    assert quoted.encode(quoted.decode([0.9]), "text/csv")[0] == '"say ""yes""",0.9\n'


def test_reads_the_xgboost_containers_answers():
    assert read_scores('{"predictions": [{"score": 0.25}, {"score": 0.75}]}', "application/json") == [0.25, 0.75]
    assert read_scores("0.25,0.75", "text/csv") == [0.25, 0.75]
    assert read_scores("0.25\n0.75\n", "text/csv") == [0.25, 0.75]
    assert read_scores("[0.1, 0.9],[0.8, 0.2]", "text/csv") == [[0.1, 0.9], [0.8, 0.2]]


def test_refuses_unsupported_types_with_their_status():
    decoder = LabelDecoder("binary", ["no", "yes"])
    with pytest.raises(RequestError) as accept:
        transform_fn(decoder, "0.5", "text/csv", "application/xml")
    assert accept.value.status_code == 406
    with pytest.raises(RequestError) as content:
        transform_fn(decoder, "0.5", "text/plain", "text/csv")
    assert content.value.status_code == 415
