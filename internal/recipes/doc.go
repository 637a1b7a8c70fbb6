// Package recipes has no code: its tests run what the documentation tells
// users to type, verbatim, on small generated datasets: README.md's "Your
// own data" commands and examples/'s vembed-factory tutorial config.
package recipes
