package ftp

import (
	"strconv"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// The deterministic core may not use the time package's clock or calendar
// beyond Duration, so civil dates are computed here (Howard Hinnant's
// days-from-civil inverse).

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func civil(unix int64) (y, mo, d, h, mi, s int64) {
	days := floorDiv(unix, 86400)
	secs := unix - days*86400
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	mo = mp + 3
	if mp >= 10 {
		mo = mp - 9
	}
	if mo <= 2 {
		y++
	}
	return y, mo, d, secs / 3600, secs / 60 % 60, secs % 60
}

func pad(b []byte, v int64, w int) []byte {
	s := strconv.FormatInt(v, 10)
	for i := len(s); i < w; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// mdtm formats a time as RFC 3659's YYYYMMDDHHMMSS (UTC).
func mdtm(unix int64) string {
	y, mo, d, h, mi, s := civil(unix)
	b := pad(nil, y, 4)
	for _, v := range []int64{mo, d, h, mi, s} {
		b = pad(b, v, 2)
	}
	return string(b)
}

const months = "JanFebMarAprMayJunJulAugSepOctNovDec"

// lsLine is one "ls -l" line as LIST shows it: recent files with the time,
// older (or future) ones with the year, like ls.
func lsLine(fi fsapi.FileInfo, now int64) string {
	mode := "-rw-r--r--"
	if fi.Dir {
		mode = "drwxr-xr-x"
	}
	y, mo, d, h, mi, _ := civil(fi.ModTime)
	b := []byte(mode + " 1 ftp ftp ")
	sz := strconv.FormatInt(fi.Size, 10)
	for i := len(sz); i < 12; i++ {
		b = append(b, ' ')
	}
	b = append(b, sz...)
	b = append(b, ' ')
	b = append(b, months[(mo-1)*3:mo*3]...)
	b = append(b, ' ')
	if d < 10 {
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, d, 10)
	b = append(b, ' ')
	const halfYear = 183 * 86400
	if fi.ModTime > now-halfYear && fi.ModTime <= now+3600 {
		b = pad(b, h, 2)
		b = append(b, ':')
		b = pad(b, mi, 2)
	} else {
		b = append(b, ' ')
		b = pad(b, y, 4)
	}
	b = append(b, ' ')
	b = append(b, fi.Name...)
	return string(append(b, "\r\n"...))
}

// factLine is one MLSD/MLST entry (RFC 3659 7.2): facts, a space, the name.
func factLine(fi fsapi.FileInfo, name string) string {
	b := []byte("type=")
	if fi.Dir {
		b = append(b, "dir"...)
	} else {
		b = append(b, "file;size="...)
		b = strconv.AppendInt(b, fi.Size, 10)
	}
	b = append(b, ";modify="...)
	b = append(b, mdtm(fi.ModTime)...)
	b = append(b, "; "...)
	b = append(b, name...)
	return string(append(b, "\r\n"...))
}
