package http

// httpDate formats Unix seconds as an IMF-fixdate (RFC 9110 5.6.7), e.g.
// "Sun, 06 Nov 1994 08:49:37 GMT". The civil date is computed here because
// the deterministic core may not use the time package beyond Duration.
func httpDate(unix int64) string {
	days := floorDiv(unix, 86400)
	secs := unix - days*86400
	y, m, d := civilFromDays(days)
	wd := (days%7 + 11) % 7 // 1970-01-01 was a Thursday (4)
	const wdays = "SunMonTueWedThuFriSat"
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	b := make([]byte, 0, 29)
	b = append(b, wdays[wd*3:wd*3+3]...)
	b = append(b, ", "...)
	b = appendPad(b, d, 2)
	b = append(b, ' ')
	b = append(b, months[(m-1)*3:(m-1)*3+3]...)
	b = append(b, ' ')
	b = appendPad(b, y, 4)
	b = append(b, ' ')
	b = appendPad(b, secs/3600, 2)
	b = append(b, ':')
	b = appendPad(b, secs/60%60, 2)
	b = append(b, ':')
	b = appendPad(b, secs%60, 2)
	return string(append(b, " GMT"...))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's algorithm, "chrono-Compatible Low-Level Date
// Algorithms").
func civilFromDays(z int64) (year, month, day int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func appendPad(b []byte, v int64, width int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i == len(tmp) {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	for n := len(tmp) - i; n < width; n++ {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}
