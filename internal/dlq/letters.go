package dlq

// Which dead letters a command means, and how they are listed and told.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Chosen reads the dead letters that have reason (any when "") and stand at
// one of offsets of the dead-letter topic (any when none), oldest first.
func (r Reader) Chosen(ctx context.Context, reason string, offsets Offsets) ([]Letter, error) {
	letters, err := r.Letters(ctx)
	if err != nil {
		return nil, err
	}
	var out []Letter
	for _, l := range letters {
		if l.Is(reason, offsets) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Is reports whether the letter has reason (any when "") and stands at one
// of offsets (any when none).
func (l Letter) Is(reason string, offsets Offsets) bool {
	return (reason == "" || l.Reason == reason) && (len(offsets) == 0 || slices.Contains(offsets, l.Offset))
}

// Listed is a dead letter as `foodpipe dlq list --json` prints it. The
// position of the message it stands for comes in headers, as text; here it
// is a number, as the letter's own position is, or null when the header is
// missing or holds no number (a message some other program put there).
type Listed struct {
	Letter
	SourcePartition *int32 `json:"source_partition"`
	SourceOffset    *int64 `json:"source_offset"`
}

// Listed is the letter as it is listed.
func (l Letter) Listed() Listed {
	out := Listed{Letter: l}
	if p, err := strconv.ParseInt(l.SourcePartition, 10, 32); err == nil {
		out.SourcePartition = new(int32(p))
	}
	if o, err := strconv.ParseInt(l.SourceOffset, 10, 64); err == nil {
		out.SourceOffset = &o
	}
	return out
}

// InWords is the letter's error without the "invalid order: reason: " the
// decoder puts first, for a list that shows the reason on its own.
func (l Letter) InWords() string {
	return strings.TrimPrefix(l.Error, "invalid order: "+l.Reason+": ")
}

// Chain says where the letter stands in its replay chain, as a list shows it
// after the error: "  [failed again after the replay of …; replayed at …]",
// or "" for a letter never replayed, from no replay, and whole.
func (l Letter) Chain() string {
	var notes []string
	if l.ReplayedFrom != "" {
		notes = append(notes, "failed again after the replay of "+l.ReplayedFrom)
	}
	if l.ReplayedAt != "" {
		notes = append(notes, "replayed at "+l.ReplayedAt)
	}
	if l.Truncated {
		notes = append(notes, "cut down; whole in "+l.StoredAs)
	}
	if len(notes) == 0 {
		return ""
	}
	return "  [" + strings.Join(notes, "; ") + "]"
}

// Offsets are positions on the dead-letter topic that name letters. As a
// flag.Value it reads a comma-separated list, and adds to it when repeated.
type Offsets []int64

func (o *Offsets) String() string { return fmt.Sprint(*o) }

// Set adds the offsets in s, comma-separated.
func (o *Offsets) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not an offset", part)
		}
		*o = append(*o, n)
	}
	return nil
}
