// Package turbojpeg decodes JPEGs through libjpeg-turbo's TurboJPEG API
// (Debian libturbojpeg0-dev) when built with -tags turbojpeg (and cgo).
// Pillow decodes JPEGs with the same library and the settings used here
// (ISLOW integer IDCT, fancy chroma upsampling, no DCT scaling, libjpeg's
// YCbCr->RGB tables), so the pixels equal Pillow's bit for bit, where Go's
// image/jpeg (imageproc's default) differs by its own IDCT. It is a package
// of its own because Go refuses cgo and Go assembly (imageproc's SIMD
// resampling) in one package.
package turbojpeg
