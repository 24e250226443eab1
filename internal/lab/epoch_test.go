package lab

import (
	"errors"
	"log/slog"
	"slices"
	"testing"

	"foodpipe/internal/kafka"
)

// Under KIP-848 each member's card carries its epoch and target assignment,
// as the broker describes the member with its static id; under the classic
// protocol, or while the broker is not read, no card does.
func TestAKIP848MembersCardCarriesItsEpochAndTarget(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2", "consumer-3")
	o.log = slog.New(slog.DiscardHandler) // an unread broker is logged
	s := &sample{at: o.now, view: topic(10, 10, 10), children: map[string]childSample{}}
	s.view.Protocol, s.view.State, s.view.Epoch = kafka.ProtocolConsumer, "Reconciling", 7
	s.view.Members = []kafka.MemberView{
		{ClientID: "foodpipe-consumer-1", InstanceID: "consumer-1", Epoch: 7, Partitions: []int32{0}, Target: []int32{0, 2}},
		{ClientID: "foodpipe-consumer-2", InstanceID: "consumer-2", Epoch: -2, Partitions: []int32{1}, Target: []int32{1}},
	}
	o.fold(s)
	cards := map[string]*MemberEpoch{}
	for _, m := range o.st.snap.Members {
		cards[m.ID] = m.KIP848
	}
	if e := cards["consumer-1"]; e == nil || e.Epoch != 7 || !slices.Equal(e.Target, []int32{0, 2}) {
		t.Errorf("consumer-1's card %+v, want epoch 7, target [0 2]", e)
	}
	if e := cards["consumer-2"]; e == nil || e.Epoch != -2 || !slices.Equal(e.Target, []int32{1}) {
		t.Errorf("consumer-2's card %+v, want epoch -2 (away), target [1]", e)
	}
	if e := cards["consumer-3"]; e != nil {
		t.Errorf("consumer-3, whom the broker does not list, has %+v on its card", e)
	}

	s.view.Protocol = kafka.ProtocolClassic
	o.fold(s)
	for _, m := range o.st.snap.Members {
		if m.KIP848 != nil {
			t.Errorf("under the classic protocol %s's card has %+v", m.ID, m.KIP848)
		}
	}
	s.view.Protocol, s.viewErr = kafka.ProtocolConsumer, errors.New("broker away")
	o.fold(s)
	for _, m := range o.st.snap.Members {
		if m.KIP848 != nil {
			t.Errorf("with the broker unread %s's card has %+v", m.ID, m.KIP848)
		}
	}
}
