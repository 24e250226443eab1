package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInbox is a failure to read a mail server's inbox through its API.
var ErrInbox = errors.New("read inbox")

// Received is one email as the receiving server's API lists it.
type Received struct {
	MessageID string    `json:"message_id"` // without angle brackets, as Mailpit gives it
	To        []string  `json:"to"`
	Subject   string    `json:"subject"`
	At        time.Time `json:"received_at"`
}

// Inbox is what a receiver holds: every email, and the Message-IDs that came
// more than once (each with how many times), which a receiver that drops
// repeats by Message-ID would have shown once.
type Inbox struct {
	Messages []Received `json:"messages"`
	// Distinct is how many different Message-IDs arrived.
	Distinct int `json:"distinct"`
	// Duplicates is how many emails repeat a Message-ID that arrived
	// before: len(Messages) - Distinct.
	Duplicates int `json:"duplicates"`
	// Repeated are the Message-IDs that came more than once, with their count.
	Repeated map[string]int `json:"repeated,omitempty"`
}

// ReadInbox reads every email a Mailpit server holds, through its REST API
// at apiURL (http://host:port), newest last.
func ReadInbox(ctx context.Context, apiURL string) (Inbox, error) {
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return Inbox{}, fmt.Errorf("%w: api url %q: want http://host:port", ErrInbox, apiURL)
	}
	const page = 1000
	var all []Received
	for start := 0; ; start += page {
		u := base.JoinPath("/api/v1/messages")
		u.RawQuery = url.Values{"start": {strconv.Itoa(start)}, "limit": {strconv.Itoa(page)}}.Encode()
		var body struct {
			Total    int `json:"total"`
			Messages []struct {
				MessageID string
				To        []struct{ Address string }
				Subject   string
				Created   time.Time
			} `json:"messages"`
		}
		if err := getJSON(ctx, u.String(), &body); err != nil {
			return Inbox{}, err
		}
		for _, m := range body.Messages {
			r := Received{MessageID: m.MessageID, Subject: m.Subject, At: m.Created}
			for _, t := range m.To {
				r.To = append(r.To, t.Address)
			}
			all = append(all, r)
		}
		if len(body.Messages) < page || start+page >= body.Total {
			break
		}
	}
	slices.SortStableFunc(all, func(a, b Received) int { return a.At.Compare(b.At) })
	return Tally(all), nil
}

// Tally counts the Message-IDs of msgs.
func Tally(msgs []Received) Inbox {
	in := Inbox{Messages: msgs}
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		seen[m.MessageID]++
	}
	in.Distinct = len(seen)
	in.Duplicates = len(msgs) - len(seen)
	for id, n := range seen {
		if n > 1 {
			if in.Repeated == nil {
				in.Repeated = map[string]int{}
			}
			in.Repeated[id] = n
		}
	}
	return in
}

// OrderOf is the order id a Message-ID of MessageID's making names
// (without angle brackets, as an inbox lists it), or "" for another's, or
// for one whose order id was hashed.
func OrderOf(messageID string) string {
	const tail = "@" + idDomain
	messageID = strings.TrimSuffix(strings.TrimPrefix(messageID, "<"), ">")
	if len(messageID) <= len(tail) || messageID[len(messageID)-len(tail):] != tail {
		return ""
	}
	id := messageID[:len(messageID)-len(tail)]
	if localPart(id) != id || len(id) > 7 && id[:7] == "sha256-" {
		return ""
	}
	return id
}

func getJSON(ctx context.Context, u string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInbox, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInbox, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%w: %s: %s: %s", ErrInbox, u, resp.Status, b)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(into); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInbox, u, err)
	}
	return nil
}
