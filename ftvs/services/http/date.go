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

// parseHTTPDate reads an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
// Unix seconds. The obsolete RFC 850 and asctime forms are not read; a
// conditional header in those forms is ignored, which only costs a transfer.
func parseHTTPDate(s string) (int64, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25:] != " GMT" {
		return 0, false
	}
	num := func(t string) (int64, bool) {
		var v int64
		for i := 0; i < len(t); i++ {
			if !isDigit(t[i]) {
				return 0, false
			}
			v = v*10 + int64(t[i]-'0')
		}
		return v, true
	}
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	m := int64(-1)
	for i := 0; i < 12; i++ {
		if s[8:11] == months[i*3:i*3+3] {
			m = int64(i + 1)
		}
	}
	d, ok1 := num(s[5:7])
	y, ok2 := num(s[12:16])
	hh, ok3 := num(s[17:19])
	mm, ok4 := num(s[20:22])
	ss, ok5 := num(s[23:25])
	if m < 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 {
		return 0, false
	}
	return daysFromCivil(y, m, d)*86400 + hh*3600 + mm*60 + ss, true
}

// daysFromCivil is the inverse of civilFromDays (same source).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
