package vdisk

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func sampleMD(t testing.TB) Metadata {
	m, err := Layout(1<<30, 512, DefaultGranularity)
	if err != nil {
		t.Fatal(err)
	}
	m.Seq, m.UUID, m.Node, m.State = 7, testUUID, 2, Outdated
	m.Flags = FlagCrashedPrimary
	m.Gens = Gens{Current: 0xdeadbeef01, Bitmap: 0xdeadbeef02, History: [2]uint64{3, 0xdeadbeef04}}
	m.ResyncCursor = 4096
	return m
}

func TestMetadataRoundTrip(t *testing.T) {
	m := sampleMD(t)
	b := m.Encode()
	if len(b) != SlotSize {
		t.Fatalf("slot is %d bytes", len(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != m {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	// The documented offsets hold the documented values.
	le := binary.LittleEndian
	if string(b[:8]) != "FTVSVDSK" || le.Uint32(b[8:]) != 1 || le.Uint64(b[16:]) != 7 || b[40] != 2 ||
		b[41] != 2 || le.Uint64(b[72:]) != 0xdeadbeef01 || le.Uint64(b[120:]) != 4<<20 {
		t.Fatal("encoded bytes do not match the documented layout")
	}
	if m.DataOffset != 1<<20 || m.BitmapBytes != 4096 || m.DeviceSize != 1<<20+1<<30 {
		t.Fatalf("layout of 1 GiB: data offset %d bitmap %d device %d", m.DataOffset, m.BitmapBytes, m.DeviceSize)
	}
}

// reseal recomputes the checksum after a deliberate field corruption so
// that the field check, not the CRC, must catch it.
func reseal(b []byte) {
	binary.LittleEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[:crcOffset], castagnoli))
}

func TestMetadataCorruptFieldNamed(t *testing.T) {
	cases := []struct {
		field string
		off   int
		mut   func(b []byte)
	}{
		{"crc32c", crcOffset, func(b []byte) { b[72] ^= 1 }},
		{"version", 8, func(b []byte) { b[8] = 9; reseal(b) }},
		{"slot_size", 12, func(b []byte) { b[13] = 0; reseal(b) }},
		{"uuid", 24, func(b []byte) { clear(b[24:40]); reseal(b) }},
		{"node", 40, func(b []byte) { b[40] = 3; reseal(b) }},
		{"state", 41, func(b []byte) { b[41] = 9; reseal(b) }},
		{"flags", 42, func(b []byte) { b[43] = 0x80; reseal(b) }},
		{"sector_size", 44, func(b []byte) { b[44] = 1; reseal(b) }},
		{"data_offset", 56, func(b []byte) { b[58]++; reseal(b) }},
		{"data_size", 64, func(b []byte) { b[64] = 1; reseal(b) }},
		{"gen_current", 72, func(b []byte) { clear(b[72:80]); reseal(b) }},
		{"bitmap_offset", 104, func(b []byte) { b[105] = 0; reseal(b) }},
		{"bitmap_bytes", 112, func(b []byte) { b[113] = 0x20; reseal(b) }},
		{"bitmap_granularity", 120, func(b []byte) { b[120] = 3; reseal(b) }},
		{"device_size", 48, func(b []byte) { clear(b[48:56]); reseal(b) }},
		{"resync_cursor", 128, func(b []byte) { b[135] = 1; reseal(b) }},
		{"reserved", 200, func(b []byte) { b[200] = 1; reseal(b) }},
	}
	m := sampleMD(t)
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			b := m.Encode()
			c.mut(b)
			_, err := Decode(b)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != c.field || fe.Offset != c.off {
				t.Fatalf("error names %s@%d, want %s@%d: %v", fe.Field, fe.Offset, c.field, c.off, err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
	if _, err := Decode(make([]byte, SlotSize)); !errors.Is(err, ErrNotVdisk) {
		t.Fatalf("zero slot: %v, want ErrNotVdisk", err)
	}
	if _, err := Decode(make([]byte, 10)); err == nil {
		t.Fatal("short slot accepted")
	}
}

func TestPickSlotTorn(t *testing.T) {
	m := sampleMD(t)
	old := m.Encode()
	m.Seq++
	m.Gens.Current = 0x999
	newer := m.Encode()
	// A torn write of the newer slot: its second half is still the bytes
	// that were there before (zeros here).
	torn := append([]byte(nil), newer...)
	clear(torn[SlotSize/2:])

	got, slot, st, err := PickSlot(old, newer)
	if err != nil || slot != 1 || got.Gens.Current != 0x999 {
		t.Fatalf("both valid: slot %d gen %#x err %v", slot, got.Gens.Current, err)
	}
	got, slot, st, err = PickSlot(old, torn)
	if err != nil || slot != 0 || got.Seq != 7 {
		t.Fatalf("torn newer slot: slot %d seq %d err %v", slot, got.Seq, err)
	}
	if st[1].Valid || st[1].Err == nil || !strings.Contains(st[1].Err.Error(), "crc32c") {
		t.Fatalf("torn slot status %+v does not say crc32c", st[1])
	}
	got, slot, _, err = PickSlot(torn, old)
	if err != nil || slot != 1 {
		t.Fatalf("torn slot 0: slot %d err %v", slot, err)
	}
	if _, _, _, err = PickSlot(torn, torn); err == nil || !strings.Contains(err.Error(), "slot 0") {
		t.Fatalf("both torn: %v", err)
	}
	z := make([]byte, SlotSize)
	if _, _, _, err = PickSlot(z, z); !errors.Is(err, ErrNotVdisk) {
		t.Fatalf("blank device: %v", err)
	}
	other := sampleMD(t)
	other.Node = 1
	other.Seq = 8
	if _, _, _, err = PickSlot(old, other.Encode()); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Fatalf("slots of different nodes: %v", err)
	}
}

func TestLayout(t *testing.T) {
	for _, c := range []struct {
		size, gran int64
		ok         bool
	}{
		{4096, 4096, true}, {1 << 40, DefaultGranularity, true}, {1 << 40, 4096, true},
		{0, 4096, false}, {4095, 4096, false}, {1 << 20, 3000, false}, {1 << 20, 2048, false},
	} {
		m, err := Layout(c.size, 4096, c.gran)
		if (err == nil) != c.ok {
			t.Errorf("Layout(%d, %d): err %v, want ok=%v", c.size, c.gran, err, c.ok)
			continue
		}
		if err != nil {
			continue
		}
		if m.DataOffset%DataAlign != 0 || m.BitmapOffset+m.BitmapBytes > m.DataOffset || m.BitmapBytes*8 < m.Regions() {
			t.Errorf("Layout(%d, %d) = %+v: overlapping or short", c.size, c.gran, m)
		}
	}
	if _, err := Layout(1<<20, 1000, 4096); err == nil {
		t.Error("sector size 1000 accepted")
	}
}

func FuzzDecode(f *testing.F) {
	m := sampleMD(f)
	f.Add(m.Encode())
	m.State, m.Flags, m.Node = Inconsistent, 0, 1
	m.Gens = Gens{Current: JustCreated}
	f.Add(m.Encode())
	f.Add(make([]byte, SlotSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes and validate.
		if err := md.Validate(); err != nil {
			t.Fatalf("decoded metadata does not validate: %v", err)
		}
		if got := md.Encode(); string(got) != string(b) {
			t.Fatal("decode/encode is not the identity")
		}
	})
}

// FuzzDecodeResealed fixes the checksum of every input first, so the
// fuzzer explores the field checks behind the CRC instead of the CRC.
func FuzzDecodeResealed(f *testing.F) {
	m := sampleMD(f)
	f.Add(m.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != SlotSize {
			return
		}
		copy(b, Magic)
		reseal(b)
		md, err := Decode(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("resealed slot rejected without naming a field: %v", err)
			}
			return
		}
		if got := md.Encode(); string(got) != string(b) {
			t.Fatal("decode/encode is not the identity")
		}
	})
}
