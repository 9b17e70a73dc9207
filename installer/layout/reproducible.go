package layout

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// Both CoServers format their copy of the VS boot disk on their own, and the
// lockstep VS reads the two copies as one: one differing byte is a
// divergence. go-diskfs v1.9.4 (fat32.Create with reproducible=true) writes a
// zero volume ID but stamps every directory entry with
// util/timestamp.GetTime, the wall clock unless SOURCE_DATE_EPOCH is set. We
// do not touch the process environment (other goroutines may read it);
// instead stampFAT32 rewrites, after the format, every timestamp the
// directories hold and the volume ID, from a Stamp both installers compute
// the same way.

// Stamp is what a reproducible FAT32 holds where go-diskfs would put the
// clock or a random number.
type Stamp struct {
	Time     time.Time // every entry's creation, modification and access time (FAT: 2 s steps, 1980-2107)
	VolumeID uint32    // boot sector volume serial number
}

// StampEpoch is the time a default Stamp writes: 2000-01-01 00:00:00 UTC,
// plainly not a real install time.
const StampEpoch = 946684800

// DefaultStamp is the Stamp of a FAT32 with no pair key: the fixed epoch
// and a volume ID derived from the label.
func DefaultStamp(label string) Stamp {
	s := sha256.Sum256([]byte("ftvs fat32 volume id v1\x00" + label))
	return Stamp{Time: time.Unix(StampEpoch, 0).UTC(), VolumeID: binary.LittleEndian.Uint32(s[:4])}
}

// PairStamp is the Stamp of the FAT32 in the partition or virtual disk
// called name: the fixed epoch and a volume ID derived from the pair key,
// the same on both CoServers and different for every disk.
func PairStamp(pairKey []byte, name string) Stamp {
	m := hmac.New(sha256.New, pairKey)
	m.Write([]byte("ftvs fat32 volume id v1\x00" + name))
	return Stamp{Time: time.Unix(StampEpoch, 0).UTC(), VolumeID: binary.LittleEndian.Uint32(m.Sum(nil))}
}

// fatDateTime encodes t (UTC) as FAT date and time words.
func fatDateTime(t time.Time) (date, tm uint16, err error) {
	t = t.UTC()
	if t.Year() < 1980 || t.Year() > 2107 {
		return 0, 0, fmt.Errorf("stamp time %s is outside FAT's 1980-2107", t.Format(time.RFC3339))
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm, nil
}

// stampFAT32 writes st into the FAT32 at offset in b: the volume ID in the
// boot sector and its backup, and st.Time into every directory entry of
// every directory reachable from the root (deleted and long-name slots are
// left as they are: they hold no time). On the way it frees the cluster
// go-diskfs v1.9.4 gives an empty file (fsck.fat: "File size is 0 bytes,
// cluster chain length is > 0"): an empty file has cluster 0. v is the
// volume as readFATVolume read it; its FAT is kept up to date.
func stampFAT32(b backend.Storage, offset int64, v *fatVolume, st Stamp) error {
	date, tm, err := fatDateTime(st.Time)
	if err != nil {
		return err
	}
	w, err := b.Writable()
	if err != nil {
		return err
	}
	var id [4]byte
	binary.LittleEndian.PutUint32(id[:], st.VolumeID)
	for _, s := range []int64{0, v.backupBoot} {
		if s != 0 && s >= v.reserved {
			continue
		}
		if _, err := w.WriteAt(id[:], offset+s*v.bps+67); err != nil {
			return fmt.Errorf("write volume ID: %w", err)
		}
	}
	rootCluster, clusters, clusterBytes := v.rootCluster, v.clusters, v.clusterBytes
	entry, clusterOff := v.entry, v.clusterOff

	// Depth-first over directories; seen bounds the walk on a damaged tree.
	seen := map[uint32]bool{}
	fatChanged := false
	todo := []uint32{rootCluster}
	buf := make([]byte, clusterBytes)
	for len(todo) > 0 {
		dir := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		end := false
		for c, n := dir, uint32(0); !end && c >= 2 && c < clusters+2 && n <= clusters; c, n = entry(c), n+1 {
			if seen[c] {
				break
			}
			seen[c] = true
			if _, err := b.ReadAt(buf, clusterOff(c)); err != nil {
				return fmt.Errorf("read directory cluster %d: %w", c, err)
			}
			for i := 0; i+32 <= len(buf); i += 32 {
				e := buf[i : i+32]
				if e[0] == 0 {
					end = true
					break
				}
				if e[0] == 0xe5 || e[11]&0x3f == 0x0f {
					continue
				}
				e[13] = 0 // creation time, tenths of a second
				binary.LittleEndian.PutUint16(e[14:], tm)
				binary.LittleEndian.PutUint16(e[16:], date)
				binary.LittleEndian.PutUint16(e[18:], date) // last access date
				binary.LittleEndian.PutUint16(e[22:], tm)
				binary.LittleEndian.PutUint16(e[24:], date)
				first := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
				if e[11]&0x10 != 0 && e[0] != '.' {
					todo = append(todo, first)
				}
				if e[11]&0x18 == 0 && binary.LittleEndian.Uint32(e[28:]) == 0 && first != 0 {
					// Free the chain (bounded by the cluster count).
					for c, n := first, uint32(0); c >= 2 && c < clusters+2 && n <= clusters; n++ {
						next := entry(c)
						binary.LittleEndian.PutUint32(v.fat[4*c:], 0)
						c = next
					}
					clear(e[20:22])
					clear(e[26:28])
					fatChanged = true
				}
			}
			if _, err := w.WriteAt(buf, clusterOff(c)); err != nil {
				return fmt.Errorf("write directory cluster %d: %w", c, err)
			}
		}
	}
	if fatChanged {
		return v.writeFATs(w)
	}
	return nil
}
