package nbd

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// A blockdev.Device takes whole sectors only; NBD clients may address single
// bytes. devRead and devWrite go through the aligned middle directly and
// read-modify-write the partial sectors at either end.

func (s *Service) devRead(dev blockdev.Device, p []byte, off int64) error {
	sec := int64(dev.SectorSize())
	for len(p) > 0 {
		if off%sec == 0 && int64(len(p)) >= sec {
			n := int64(len(p)) / sec * sec
			if _, err := dev.ReadAt(p[:n], off); err != nil {
				return fmt.Errorf("nbd: read %d bytes at %d: %w", n, off, err)
			}
			p, off = p[n:], off+n
			continue
		}
		base := off / sec * sec
		tmp := make([]byte, sec)
		if _, err := dev.ReadAt(tmp, base); err != nil {
			return fmt.Errorf("nbd: read sector at %d: %w", base, err)
		}
		n := copy(p, tmp[off-base:])
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (s *Service) devWrite(dev blockdev.Device, p []byte, off int64) error {
	sec := int64(dev.SectorSize())
	for len(p) > 0 {
		if off%sec == 0 && int64(len(p)) >= sec {
			n := int64(len(p)) / sec * sec
			if _, err := dev.WriteAt(p[:n], off); err != nil {
				return fmt.Errorf("nbd: write %d bytes at %d: %w", n, off, err)
			}
			p, off = p[n:], off+n
			continue
		}
		base := off / sec * sec
		tmp := make([]byte, sec)
		if _, err := dev.ReadAt(tmp, base); err != nil {
			return fmt.Errorf("nbd: read sector at %d: %w", base, err)
		}
		n := copy(tmp[off-base:], p)
		if _, err := dev.WriteAt(tmp, base); err != nil {
			return fmt.Errorf("nbd: write sector at %d: %w", base, err)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// zeroChunk is the most zeroes written per device call.
const zeroChunk = 1 << 20

func (s *Service) zero(dev blockdev.Device, off, n int64) error {
	z := make([]byte, min(n, zeroChunk))
	for n > 0 {
		k := min(n, int64(len(z)))
		if err := s.devWrite(dev, z[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
