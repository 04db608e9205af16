"""The bench's fixed-width tables."""

from satx.bench.table import Column, table


def test_columns_align_and_format():
    columns = (Column("name", "name", 6, left=True), Column("rate", "rate", 7, ".1f"))
    columns += (Column("note", lambda r: f"x{r['rate']:.0f}", left=True),)
    text = table([{"name": "tf", "rate": 12.34}, {"name": "onnx", "rate": 1234.5}], columns)
    assert text.splitlines() == [
        "name      rate note",
        "tf        12.3 x12",
        "onnx    1234.5 x1234",
    ]
