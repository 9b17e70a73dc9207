package http

import (
	"html"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// listing renders a directory as HTML. urlPath is the directory's path with
// a trailing slash; at most max entries are shown.
func listing(urlPath string, entries []fsapi.FileInfo, max int) []byte {
	title := html.EscapeString(urlPath)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ")
	b.WriteString(title)
	b.WriteString("</title></head>\n<body><h1>Index of ")
	b.WriteString(title)
	b.WriteString("</h1><hr><pre>\n")
	if urlPath != "/" {
		b.WriteString("<a href=\"../\">../</a>\n")
	}
	for i, e := range entries {
		if i == max {
			b.WriteString("\n(")
			b.WriteString(strconv.Itoa(len(entries) - max))
			b.WriteString(" more entries not shown)\n")
			break
		}
		name := e.Name
		if e.Dir {
			name += "/"
		}
		b.WriteString("<a href=\"")
		b.WriteString(html.EscapeString(escapePath(name)))
		b.WriteString("\">")
		b.WriteString(html.EscapeString(name))
		b.WriteString("</a>")
		pad := 50 - len([]rune(name))
		if pad < 1 {
			pad = 1
		}
		b.WriteString(strings.Repeat(" ", pad))
		b.WriteString(httpDate(e.ModTime))
		if e.Dir {
			b.WriteString("  ")
			b.WriteString(strings.Repeat(" ", 19))
			b.WriteString("-\n")
		} else {
			s := strconv.FormatInt(e.Size, 10)
			b.WriteString("  ")
			b.WriteString(strings.Repeat(" ", max0(20-len(s))))
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	b.WriteString("</pre><hr></body></html>\n")
	return []byte(b.String())
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// escapePath percent-encodes every byte of a path except unreserved
// characters, "/" and a few sub-delimiters, so a name can go into a URL.
func escapePath(p string) string {
	const hexd = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~/!$'()*+,;=", c) >= 0:
			b = append(b, c)
		default:
			b = append(b, '%', hexd[c>>4], hexd[c&15])
		}
	}
	return string(b)
}
