package demo

import (
	"errors"
	"testing"

	"foodpipe/internal/semantics"
)

func TestJudgeSemanticsPassesOnlyWhenEachSemanticsShows(t *testing.T) {
	kills := make([]Kill, 3)
	shown := func() SemanticsSummary {
		return SemanticsSummary{Produced: 100, Kills: kills, Groups: []semantics.Counts{
			{Semantics: semantics.AtMostOnce, Produced: 100, Lost: 5, Once: 95},
			{Semantics: semantics.AtLeastOnce, Produced: 100, Once: 95, Twice: 5},
			{Semantics: semantics.ExactlyOnce, Produced: 100, Once: 100},
		}}
	}
	tests := []struct {
		name   string
		change func(*SemanticsSummary)
		pass   bool
	}{
		{"each semantics shown passes", func(*SemanticsSummary) {}, true},
		{"at most once losing nothing fails", func(s *SemanticsSummary) { s.Groups[0].Lost, s.Groups[0].Once = 0, 100 }, false},
		{"at least once doubling nothing fails", func(s *SemanticsSummary) { s.Groups[1].Twice, s.Groups[1].Once = 0, 100 }, false},
		{"the pipeline's group losing one fails", func(s *SemanticsSummary) { s.Groups[2].Lost, s.Groups[2].Once = 1, 99 }, false},
		{"the pipeline's group doubling one fails", func(s *SemanticsSummary) { s.Groups[2].Twice, s.Groups[2].Once = 1, 99 }, false},
		{"a member not killed fails", func(s *SemanticsSummary) { s.Kills = s.Kills[:2] }, false},
		{"a group that counted other orders fails", func(s *SemanticsSummary) { s.Groups[2].Produced = 99 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := shown()
			tt.change(&s)
			err := JudgeSemantics(s)
			if tt.pass && err != nil || !tt.pass && !errors.Is(err, ErrSemanticsHidden) {
				t.Errorf("JudgeSemantics = %v, want pass = %v", err, tt.pass)
			}
		})
	}
}
