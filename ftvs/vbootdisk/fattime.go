package vbootdisk

// FAT stores local date and time with 2-second resolution from 1980 to 2107.
// This store writes the machine's virtual time (Unix seconds) as UTC, and
// converts by hand: the time package's clock and zone functions are not for
// the deterministic core.

const (
	fatMinUnix = 315532800  // 1980-01-01 00:00:00 UTC
	fatMaxUnix = 4354819198 // 2107-12-31 23:59:58 UTC
)

// daysFromCivil and civilFromDays are Howard Hinnant's algorithms
// (proleptic Gregorian calendar, days since 1970-01-01).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// toFATTime converts Unix seconds (clamped to FAT's range) to FAT date and
// time words.
func toFATTime(unix int64) (date, tm uint16) {
	if unix < fatMinUnix {
		unix = fatMinUnix
	}
	if unix > fatMaxUnix {
		unix = fatMaxUnix
	}
	days, secs := unix/86400, unix%86400
	y, m, d := civilFromDays(days)
	date = uint16((y-1980)<<9 | m<<5 | d)
	tm = uint16(secs/3600<<11 | secs%3600/60<<5 | secs%60/2)
	return date, tm
}

// fromFATTime converts FAT date and time words to Unix seconds; a zero or
// impossible date gives 0.
func fromFATTime(date, tm uint16) int64 {
	y, m, d := int64(date>>9)+1980, int64(date>>5&0x0f), int64(date&0x1f)
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return 0
	}
	h, mi, s := int64(tm>>11), int64(tm>>5&0x3f), int64(tm&0x1f)*2
	if h > 23 || mi > 59 || s > 59 {
		h, mi, s = 0, 0, 0
	}
	return daysFromCivil(y, m, d)*86400 + h*3600 + mi*60 + s
}
