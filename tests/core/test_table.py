"""The shared CSV reader: line numbers as the file has them, strict types."""

import numpy as np
import pytest

from matforge.core.errors import ConfigError
from matforge.core.table import read_table


def test_lines_count_blank_lines_and_quoted_line_breaks(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('a,b\n1,2\n\n\n3,"x\ny"\n4,oops\n')
    table = read_table(path)
    assert table.lines.tolist() == [2, 5, 7]
    assert table.text("b") == ["2", "x\ny", "oops"]
    with pytest.raises(ConfigError, match=r"data\.csv, lines 5, 7: column 'b' has missing"):
        table.numeric("b")
    np.testing.assert_array_equal(table.numeric("a", positive=True), [1.0, 3.0, 4.0])


def test_numeric_checks_name_the_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,-1\n2,inf\n")
    table = read_table(path)
    with pytest.raises(ConfigError, match=r"line 3: column 'y' has missing or non-numeric"):
        table.numeric("y")
    assert np.isinf(table.numeric("y", finite=False)[1])
    with pytest.raises(ConfigError, match=r"line 2: column 'y' must be >= 0"):
        table.numeric("y", finite=False, non_negative=True)
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['z'\]"):
        table.numeric("z")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b\n1,2,3\n", r"line 2: 3 fields, but the header \(line 1\) has 2"),
        ("a,a\n1,2\n", r"repeated: \['a'\]"),
        ("a,b\n", "0 data rows"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_table(path)


def test_binary_garbage_and_missing_files(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ConfigError, match="not a readable CSV"):
        read_table(path)
    with pytest.raises(ConfigError, match="no such file"):
        read_table(tmp_path / "absent.csv")
