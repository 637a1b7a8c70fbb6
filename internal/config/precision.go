package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/clipline/clipline/internal/device"
)

// precisionKeys are Hugging Face's mixed-precision switches. They are not
// fields of Config: true asks for the device's reduced-precision mode, which
// the device string carries (cuda,bf16), so it is folded into device.
var precisionKeys = map[string]bool{"bf16": true, "fp16": true}

// precision records where bf16 or fp16 was set true ("" when not).
type precision struct{ bf16, fp16 string }

func (p *precision) set(key string, n *yaml.Node, src Source, where string) error {
	on := false
	if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		if err := decodeStrict(n, &on, reflect.TypeOf(on)); err != nil {
			return &ValueError{Key: key, Value: nodeText(n), Source: src, Where: where, Reason: err.Error()}
		}
	}
	w := ""
	if on {
		w = where
	}
	if key == "bf16" {
		p.bf16 = w
	} else {
		p.fp16 = w
	}
	return nil
}

// applyPrecision maps bf16: true onto the device's bf16 mode and says so in
// one line (note); where the device has no such mode it says that instead.
// It runs after Validate, so Device parses.
func (l *Loaded) applyPrecision(note func(format string, args ...any)) {
	p := l.prec
	if p.bf16 == "" && p.fp16 == "" {
		return
	}
	dev := l.Config.Device
	spec, err := device.Parse(dev)
	if err != nil {
		return
	}
	if spec.Kind != "cuda" {
		var asked []string
		for _, k := range []struct{ key, where string }{{"bf16", p.bf16}, {"fp16", p.fp16}} {
			if k.where != "" {
				asked = append(asked, k.key+": true ("+k.where+")")
			}
		}
		note("%s ignored: training on %s is float32 (device %s from %s)", strings.Join(asked, ", "), spec.Kind, dev, l.Where("device"))
		return
	}
	if p.bf16 != "" {
		if strings.Contains(dev, ",") {
			note("bf16: true (%s) ignored: device %s (from %s) names its precision", p.bf16, dev, l.Where("device"))
		} else {
			l.Config.Device = dev + ",bf16"
			note("bf16: true (%s): device %s (bf16 matrix products, float32 accumulation and weights)", p.bf16, l.Config.Device)
		}
	}
	if p.fp16 != "" {
		note("fp16: true (%s) ignored: clipline has no fp16 mode; bf16: true (device %s,bf16) gives bf16 matrix products", p.fp16, spec.String())
	}
}
