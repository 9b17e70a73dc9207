package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/u-root/u-root/pkg/smbios"
)

// DMI is what the inventory reads from an SMBIOS table: types 0, 1, 2, 4
// and 17.
type DMI struct {
	System    *System
	Baseboard *Baseboard
	BIOS      *BIOS    // BootMode is never set from SMBIOS
	Sockets   []Socket // populated type 4 sockets; Microcode and Flags unknown
	DIMMs     []DIMM
	Missing   []string // the table types that were absent, e.g. "type 2 (baseboard)"
	// NoTable says why there are no DIMMs or sockets when the strings
	// came from /sys/class/dmi/id instead of a raw table.
	NoTable string
}

// maxSMBIOSTables bounds the structures read from one table: real tables
// hold a few hundred.
const maxSMBIOSTables = 4096

// ParseSMBIOS decodes raw SMBIOS data: either the structure table alone
// (the bytes of /sys/firmware/dmi/tables/DMI) or a dmidecode --dump-bin file
// (an entry point, then the table at the offset the entry point names).
func ParseSMBIOS(data []byte) (dmi *DMI, err error) {
	// u-root's decoders index into the structures they are given; a corrupt
	// table must become an error, never a crash of the caller.
	defer func() {
		if r := recover(); r != nil {
			dmi, err = nil, fmt.Errorf("corrupt SMBIOS data: %v", r)
		}
	}()
	table, err := tableData(data)
	if err != nil {
		return nil, err
	}
	var tables []*smbios.Table
	for off := 0; len(table) > 0; {
		if len(tables) >= maxSMBIOSTables {
			return nil, fmt.Errorf("more than %d SMBIOS structures", maxSMBIOSTables)
		}
		if len(table) >= 2 && table[1] < 4 {
			return nil, fmt.Errorf("SMBIOS structure at offset %d: length %d is shorter than its header", off, table[1])
		}
		t, rest, perr := smbios.ParseTable(table)
		if t == nil {
			if perr == nil {
				perr = errors.New("no structure")
			}
			return nil, fmt.Errorf("SMBIOS structure %d at offset %d: %w", len(tables), off, perr)
		}
		tables = append(tables, t)
		off += len(table) - len(rest)
		table = rest
		if t.Type == smbios.TableTypeEndOfTable {
			break
		}
	}
	if len(tables) == 0 {
		return nil, errors.New("empty SMBIOS table")
	}
	return decodeTables(tables)
}

func tableData(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte("_SM")) {
		return data, nil
	}
	e32, e64, err := smbios.ParseEntry(data)
	if err != nil {
		return nil, fmt.Errorf("SMBIOS entry point: %w", err)
	}
	var addr, size uint64
	if e32 != nil {
		addr, size = uint64(e32.StructTableAddr), uint64(e32.StructTableLength)
	} else {
		addr, size = e64.StructTableAddr, uint64(e64.StructMaxSize)
	}
	if addr >= uint64(len(data)) {
		return nil, fmt.Errorf("SMBIOS entry point names table offset %#x beyond the %d-byte file (not a dmidecode --dump-bin file?)", addr, len(data))
	}
	end := uint64(len(data))
	if size > 0 && addr+size < end {
		end = addr + size
	}
	return data[addr:end], nil
}

func decodeTables(tables []*smbios.Table) (*DMI, error) {
	dmi := &DMI{}
	byType := func(tt smbios.TableType) []*smbios.Table {
		var out []*smbios.Table
		for _, t := range tables {
			if t.Type == tt {
				out = append(out, t)
			}
		}
		return out
	}
	if ts := byType(smbios.TableTypeBIOSInfo); len(ts) > 0 {
		bi, err := smbios.ParseBIOSInfo(ts[0])
		if err != nil {
			return nil, fmt.Errorf("SMBIOS type 0 (BIOS): %w", err)
		}
		dmi.BIOS = &BIOS{Vendor: str(bi.Vendor), Version: str(bi.Version), ReleaseDate: str(bi.ReleaseDate)}
	} else {
		dmi.Missing = append(dmi.Missing, "type 0 (BIOS)")
	}
	if ts := byType(smbios.TableTypeSystemInfo); len(ts) > 0 {
		si, err := smbios.ParseSystemInfo(ts[0])
		if err != nil {
			return nil, fmt.Errorf("SMBIOS type 1 (system): %w", err)
		}
		dmi.System = &System{
			Vendor: str(si.Manufacturer), Product: str(si.ProductName), Version: str(si.Version),
			SKU: str(si.SKUNumber), Serial: str(si.SerialNumber), UUID: ptr(strings.ToLower(si.UUID.String())),
		}
	} else {
		dmi.Missing = append(dmi.Missing, "type 1 (system)")
	}
	if ts := byType(smbios.TableTypeBaseboardInfo); len(ts) > 0 {
		bb, err := smbios.ParseBaseboardInfo(ts[0])
		if err != nil {
			return nil, fmt.Errorf("SMBIOS type 2 (baseboard): %w", err)
		}
		dmi.Baseboard = &Baseboard{Vendor: str(bb.Manufacturer), Product: str(bb.Product), Version: str(bb.Version), Serial: str(bb.SerialNumber)}
	} else {
		dmi.Missing = append(dmi.Missing, "type 2 (baseboard)")
	}
	procs := byType(smbios.TableTypeProcessorInfo)
	if len(procs) == 0 {
		dmi.Missing = append(dmi.Missing, "type 4 (processor)")
	}
	for i, t := range procs {
		pi, err := smbios.ParseProcessorInfo(t)
		if err != nil {
			return nil, fmt.Errorf("SMBIOS type 4 (processor) #%d: %w", i, err)
		}
		const populated = 0x40
		if pi.Status&populated == 0 {
			continue
		}
		dmi.Sockets = append(dmi.Sockets, processorSocket(len(dmi.Sockets), pi))
	}
	mems := byType(smbios.TableTypeMemoryDevice)
	if len(mems) == 0 {
		dmi.Missing = append(dmi.Missing, "type 17 (memory device)")
	}
	seen := map[string]int{}
	for i, t := range mems {
		md, err := smbios.NewMemoryDevice(t)
		if err != nil {
			return nil, fmt.Errorf("SMBIOS type 17 (memory device) #%d: %w", i, err)
		}
		d := memoryDevice(md)
		seen[d.Locator]++
		dmi.DIMMs = append(dmi.DIMMs, d)
	}
	// Some boards name slots "DIMM0" in every bank: qualify by bank so
	// that matching by locator stays one-to-one.
	for i := range dmi.DIMMs {
		if d := &dmi.DIMMs[i]; seen[d.Locator] > 1 {
			d.Locator = d.Bank + "/" + d.Locator
		}
	}
	if dmi.DIMMs == nil && len(mems) > 0 {
		dmi.DIMMs = []DIMM{}
	}
	return dmi, nil
}

func processorSocket(id int, pi *smbios.ProcessorInfo) Socket {
	s := Socket{ID: id, Vendor: str(pi.Manufacturer), ModelName: str(pi.Version)}
	// The processor ID's low word is CPUID leaf 1 EAX: the signature.
	family, model, stepping := cpuSignature(uint32(pi.ID))
	if pi.ID != 0 {
		s.Family, s.Model, s.Stepping = ptr(family), ptr(model), ptr(stepping)
	}
	cores, threads := int(pi.CoreCount), int(pi.ThreadCount)
	if pi.CoreCount == 0xff && pi.CoreCount2 != 0 {
		cores = int(pi.CoreCount2)
	}
	if pi.ThreadCount == 0xff && pi.ThreadCount2 != 0 {
		threads = int(pi.ThreadCount2)
	}
	if cores > 0 {
		s.Cores = ptr(cores)
	}
	if threads > 0 {
		s.Threads = ptr(threads)
	}
	return s
}

// cpuSignature decodes CPUID leaf 1 EAX the way Linux fills /proc/cpuinfo.
func cpuSignature(eax uint32) (family, model, stepping int) {
	stepping = int(eax & 0xf)
	model = int(eax>>4) & 0xf
	family = int(eax>>8) & 0xf
	if family == 0xf {
		family += int(eax>>20) & 0xff
	}
	if family >= 6 {
		model += int(eax>>16) & 0xf << 4
	}
	return family, model, stepping
}

func memoryDevice(md *smbios.MemoryDevice) DIMM {
	d := DIMM{Locator: *str(md.DeviceLocator), Bank: *str(md.BankLocator)}
	switch {
	case md.Size == 0:
		return d // empty slot
	case md.Size == 0xffff:
		// populated, size unknown
	case md.Size == 0x7fff:
		d.SizeBytes = ptr(int64(md.ExtendedSize&0x7fffffff) << 20)
	case md.Size&0x8000 != 0:
		d.SizeBytes = ptr(int64(md.Size&0x7fff) << 10)
	default:
		d.SizeBytes = ptr(int64(md.Size) << 20)
	}
	d.Populated = true
	d.Type = ptr(md.Type.String())
	d.FormFactor = ptr(md.FormFactor.String())
	if md.Speed != 0 {
		d.SpeedMTs = ptr(int(md.Speed))
	}
	if md.ConfiguredSpeed != 0 {
		d.ConfiguredMTs = ptr(int(md.ConfiguredSpeed))
	}
	if md.TotalWidth != 0 && md.TotalWidth != 0xffff {
		d.TotalWidthBits = ptr(int(md.TotalWidth))
	}
	d.Manufacturer = str(md.Manufacturer)
	d.PartNumber = str(md.PartNumber)
	d.Serial = str(md.SerialNumber)
	return d
}

// str trims an SMBIOS string. An empty string is a known value: the
// firmware wrote nothing there (u-root spells string index 0 "Not
// Specified", as dmidecode does; both mean the same).
func str(s string) *string {
	s = strings.TrimSpace(s)
	if s == "Not Specified" {
		s = ""
	}
	return &s
}
