"""Test-only oracles: independent implementations that the product code is checked against."""
