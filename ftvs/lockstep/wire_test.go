package lockstep

import (
	"bytes"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
)

func encodeBatch(first uint64, ins []machine.Input) []byte {
	b := encU64s(first)
	b = append(b, byte(len(ins)), 0, 0, 0)
	for i := range ins {
		b = appendEntry(b, &ins[i])
	}
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	ins := []machine.Input{{Now: 5, Kind: machine.InFrame, Payload: []byte("abc")}, {Now: 6, Kind: machine.InTick}}
	got, err := decodeBatch(encodeBatch(7, ins))
	if err != nil || len(got) != 2 || got[0].Seq != 7 || got[1].Seq != 8 || !bytes.Equal(got[0].Payload, []byte("abc")) || got[1].Now != 6 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, encU64s(0), encodeBatch(0, ins), encodeBatch(1, ins)[:20], append(encodeBatch(1, ins), 0)} {
		if _, err := decodeBatch(bad); err == nil {
			t.Errorf("bad batch %x accepted", bad)
		}
	}
}

// FuzzDecodeBatch: the secondary's log decoder must reject, never panic,
// and what it accepts must re-encode to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(1, []machine.Input{{Now: 1, Kind: machine.InFrame, Payload: []byte{1, 2, 3}}}))
	f.Add(encodeBatch(9, []machine.Input{{Kind: machine.InTick}, {Kind: machine.InCommand, Payload: []byte{1, 1}}}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, err := decodeBatch(b)
		if err != nil {
			return
		}
		if len(ins) == 0 {
			return
		}
		if re := encodeBatch(ins[0].Seq, ins); len(ins) < 256 && !bytes.Equal(re, b) {
			t.Fatalf("accepted batch does not re-encode: %x vs %x", b, re)
		}
	})
}

// FuzzControl covers the small control messages.
func FuzzControl(f *testing.F) {
	f.Add(uint8(2), encU64s(1, 2, 3))
	f.Add(uint8(3), snapBegin{gen: 1, seq: 2, size: 10}.encode())
	f.Add(uint8(4), append(encU64s(1, 0), 1, 2, 3))
	f.Add(uint8(7), []byte{3, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		switch typ % 8 {
		case 2:
			decodeAck(b)
		case 3:
			if s, err := decodeSnapBegin(b); err == nil && s.size > maxSnapshot {
				t.Fatal("oversized snapshot accepted")
			}
		case 4:
			decodeSnapChunk(b)
		case 7:
			decodeHello(b)
		default:
			u64s("x", b, int(typ%4), typ%2 == 0)
		}
	})
}

// The output hash sees every field and every payload byte: a replica whose
// outputs differ anywhere gets a different running hash.
func TestHashOutputsSeesEveryField(t *testing.T) {
	base := []machine.Output{{Seq: 7, Kind: machine.OutFrame, GSO: 1448, Payload: bytes.Repeat([]byte{0xab}, 3000)}}
	want := hashOutputs(1, base)
	if hashOutputs(1, base) != want {
		t.Fatal("hash is not a function of its input")
	}
	variants := map[string]func(o *machine.Output){
		"seq":         func(o *machine.Output) { o.Seq++ },
		"kind":        func(o *machine.Output) { o.Kind++ },
		"gso":         func(o *machine.Output) { o.GSO-- },
		"length":      func(o *machine.Output) { o.Payload = o.Payload[:len(o.Payload)-1] },
		"first byte":  func(o *machine.Output) { o.Payload[0] ^= 1 },
		"middle byte": func(o *machine.Output) { o.Payload[1500] ^= 0x80 },
		"last byte":   func(o *machine.Output) { o.Payload[len(o.Payload)-1]++ },
	}
	for name, change := range variants {
		o := base[0]
		o.Payload = bytes.Clone(base[0].Payload)
		change(&o)
		if got := hashOutputs(1, []machine.Output{o}); got == want {
			t.Errorf("changing the %s leaves the hash at %#x", name, got)
		}
	}
	if hashOutputs(2, base) == want {
		t.Error("the running hash ignores the value it continues from")
	}
	if hashOutputs(1, append(base, base...)) == want {
		t.Error("an extra output leaves the hash unchanged")
	}
}
