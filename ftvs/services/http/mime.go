package http

import "strings"

// contentType picks a Content-Type from the file name's extension.
func contentType(name string) string {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 || strings.IndexByte(name[dot:], '/') >= 0 {
		return "application/octet-stream"
	}
	switch strings.ToLower(name[dot+1:]) {
	case "html", "htm":
		return "text/html; charset=utf-8"
	case "txt", "text", "log", "md", "conf", "cfg", "ini":
		return "text/plain; charset=utf-8"
	case "css":
		return "text/css; charset=utf-8"
	case "csv":
		return "text/csv; charset=utf-8"
	case "js", "mjs":
		return "text/javascript; charset=utf-8"
	case "json":
		return "application/json"
	case "xml":
		return "application/xml"
	case "pdf":
		return "application/pdf"
	case "zip":
		return "application/zip"
	case "gz", "tgz":
		return "application/gzip"
	case "xz":
		return "application/x-xz"
	case "zst":
		return "application/zstd"
	case "tar":
		return "application/x-tar"
	case "iso":
		return "application/x-iso9660-image"
	case "wasm":
		return "application/wasm"
	case "png":
		return "image/png"
	case "jpg", "jpeg":
		return "image/jpeg"
	case "gif":
		return "image/gif"
	case "svg":
		return "image/svg+xml"
	case "webp":
		return "image/webp"
	case "ico":
		return "image/vnd.microsoft.icon"
	case "mp4":
		return "video/mp4"
	case "webm":
		return "video/webm"
	case "mp3":
		return "audio/mpeg"
	}
	return "application/octet-stream"
}
