"""BFCL function docs (JSON Lines, Python-flavoured types, ``response`` blocks) written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.tools.loading import load_spec
from synthrun.tools.spec import SpecError

#: Several functions covering every BFCL type: dict, float, tuple, any, integer, string, boolean, array.
FUNCTIONS = [
    {"name": "get_symbol_by_name", "description": "Get the symbol of a stock by company name.",
     "parameters": {"type": "dict", "properties": {"name": {"type": "string", "description": "Company name."}},
                    "required": ["name"]},
     "response": {"type": "dict", "properties": {"symbol": {"type": "string", "description": "Stock symbol."}}}},
    {"name": "get_stock_info", "description": "Get the details of a stock.",
     "parameters": {"type": "dict", "properties": {"symbol": {"type": "string", "description": "Stock symbol."}},
                    "required": ["symbol"]},
     "response": {"type": "dict", "properties": {"price": {"type": "float", "description": "Current price."},
                                                 "volume": {"type": "integer", "description": "Shares traded."}}}},
    {"name": "place_order", "description": "Place an order.",
     "parameters": {"type": "dict", "properties": {
         "symbol": {"type": "string", "description": "Symbol of the stock to trade."},
         "price": {"type": "float", "description": "Price per share."},
         "amount": {"type": "integer", "description": "Number of shares."},
         "limit_order": {"type": "boolean", "description": "Only fill at this price.", "default": False},
         "side": {"type": "string", "description": 'Buy or sell. [Enum]: ["buy", "sell"]', "default": "buy"}},
         "required": ["symbol", "price", "amount"]},
     "response": {"type": "dict", "properties": {"order_id": {"type": "integer", "description": "New order id."},
                                                 "status": {"type": "string", "description": "Order status."}}}},
    {"name": "filter_stocks_by_price", "description": "Filter stocks based on a price range.",
     "parameters": {"type": "dict", "properties": {
         "stocks": {"type": "array", "items": {"type": "string"},
                    "description": 'Stock symbols. [Enum]: ["AAPL", "MSFT", "NVDA"]'},
         "price_range": {"type": "tuple", "items": {"type": "float"}, "description": "Lowest and highest price."}},
         "required": ["stocks", "price_range"]},
     "response": {"type": "dict", "properties": {"filtered_stocks": {"type": "array", "items": {"type": "string"}}}}},
    {"name": "set_preferences", "description": "",
     "parameters": {"type": "dict", "properties": {
         "options": {"type": "dict", "description": "Display options.",
                     "properties": {"dark_mode": {"type": "boolean"}, "font_size": {"type": "integer"}}},
         "extra": {"type": "any", "description": "Anything else to remember."},
         "start_date": {"type": "string", "description": "Start date.", "default": "None"}},
         "required": ["options"]}},
]


def write_bfcl(path: Path, functions: list[dict] = FUNCTIONS) -> Path:
    path.write_text("".join(json.dumps(f) + "\n" for f in functions), encoding="utf-8")
    return path


def test_bfcl_json_lines_are_detected_and_translated(tmp_path):
    spec = load_spec(write_bfcl(tmp_path / "trading_bot.json"))  # BFCL names its JSON Lines files .json
    assert spec.format == "bfcl" and spec.name == "trading_bot"
    assert spec.names == [f["name"] for f in FUNCTIONS]
    order = spec.get("place_order")
    assert [(p.name, p.type, p.required) for p in order.parameters] == [
        ("symbol", "string", True), ("price", "number", True), ("amount", "integer", True),
        ("limit_order", "boolean", False), ("side", "string", False)]
    assert order.param("side").enum == ["buy", "sell"] and order.param("side").default == "buy"
    assert order.returns.type == "object" and order.returns.json_schema["properties"]["order_id"]["type"] == "integer"
    assert spec.get("get_stock_info").returns.json_schema["properties"]["price"]["type"] == "number"
    rng = spec.get("filter_stocks_by_price").param("price_range")
    assert rng.type == "array" and rng.json_schema["items"] == {"type": "number"}
    stocks = spec.get("filter_stocks_by_price").param("stocks")
    assert stocks.json_schema["items"] == {"type": "string", "enum": ["AAPL", "MSFT", "NVDA"]}
    prefs = spec.get("set_preferences")
    assert prefs.param("options").json_schema["type"] == "object"
    assert prefs.param("options").json_schema["properties"]["font_size"] == {"type": "integer"}
    assert prefs.param("extra").type == "any" and "type" not in prefs.param("extra").json_schema
    assert prefs.param("start_date").default is None  # BFCL's "None" is Python's None
    assert prefs.returns.type == "any"  # no response block
    schema = prefs.input_schema()
    assert schema["type"] == "object" and schema["required"] == ["options"]


def test_question_entries_and_jsonl_suffix(tmp_path):
    path = tmp_path / "BFCL_v3_multiple.jsonl"
    entries = [{"id": "multiple_0", "question": [[{"role": "user", "content": "hi"}]], "function": FUNCTIONS[:2]},
               {"id": "multiple_1", "question": [[{"role": "user", "content": "yo"}]], "function": FUNCTIONS[1:3]}]
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n", encoding="utf-8")
    spec = load_spec(path)
    assert spec.format == "bfcl" and spec.names == ["get_symbol_by_name", "get_stock_info", "place_order"]
    one = write_bfcl(tmp_path / "one.json", FUNCTIONS[:1])  # a single line is plain JSON
    assert load_spec(one).format == "bfcl"


def test_bad_bfcl_lines_are_one_line_errors(tmp_path):
    bad_type = dict(FUNCTIONS[0], parameters={"type": "dict", "properties": {"x": {"type": "complex"}}})
    path = write_bfcl(tmp_path / "bad.json", [FUNCTIONS[1], bad_type])
    with pytest.raises(SpecError, match=r"line 2 \('get_symbol_by_name'\): parameters.properties.x.type: "
                                        r"unknown BFCL type 'complex'"):
        load_spec(path)
    path.write_text(json.dumps(FUNCTIONS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.json: line 2: not valid JSON"):
        load_spec(path)
