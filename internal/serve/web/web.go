// Package web is the search page that serve answers at GET /: one HTML page,
// a script and a style sheet, plain files embedded in the binary (no build
// step, nothing fetched from elsewhere, so it works offline).
package web

import "embed"

// FS holds index.html, app.js and style.css at its root; serve it with
// http.FileServerFS(web.FS).
//
//go:embed index.html app.js style.css
var FS embed.FS
