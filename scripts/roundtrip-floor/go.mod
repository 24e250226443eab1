module roundtrip-floor

go 1.26
