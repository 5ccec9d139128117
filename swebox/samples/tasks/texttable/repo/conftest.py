# Root conftest: makes ``texttable`` importable from a plain checkout.
