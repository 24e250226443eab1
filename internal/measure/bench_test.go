package measure

import (
	"slices"
	"testing"
)

func TestParseRatesReadsPositiveRatesSeparatedByCommas(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []float64
		wantErr bool
	}{
		{"the default", "10,1000,10000", []float64{10, 1000, 10000}, false},
		{"spaces and fractions", " 0.5, 2 ", []float64{0.5, 2}, false},
		{"a million at most", "1000000", []float64{1e6}, false},
		{"zero is no rate", "0", nil, true},
		{"a negative rate", "10,-1", nil, true},
		{"above a million", "1000001", nil, true},
		{"not a number", "fast", nil, true},
		{"an empty entry", "10,,20", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRates(tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("ParseRates(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
