package imageproc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CLIP's normalisation constants (OpenAI's CLIP and Hugging Face's
// OPENAI_CLIP_MEAN/STD), used when no preprocessor_config.json is given.
var (
	CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Config is what clipline uses from a Hugging Face preprocessor_config.json.
type Config struct {
	Geometry
	Mean, Std [3]float32
	Rescale   float64 // rescale_factor, 1/255 by default
}

// DefaultConfig is CLIP's preprocessing at n x n.
func DefaultConfig(n int) Config {
	return Config{Geometry: Square(n), Mean: CLIPMean, Std: CLIPStd, Rescale: 1.0 / 255}
}

// ConfigFile is the preprocessor file name inside a model directory.
const ConfigFile = "preprocessor_config.json"

// LoadConfig reads preprocessor_config.json from path (the file, or a model
// directory holding it); see ParseConfig.
func LoadConfig(path string) (Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ConfigFile)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(raw)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ForModel is the preprocessing of the model directory dir with CLIP's
// defaults: its preprocessor_config.json, or DefaultConfig(side) when it has
// none (CLIP models only: a SigLIP config.json makes the file required).
// side is the model's vision_config.image_size, and the crop must be
// side x side since that is what the model takes. side 0 stands for a
// directory without config.json (the size unknown): the preprocessor file is
// then required and its crop taken as it is.
func ForModel(dir string, side int) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(path); err != nil {
		if side == 0 {
			return Config{}, fmt.Errorf("%s: neither %s nor config.json found", dir, ConfigFile)
		}
		if modelType(dir) == "siglip" {
			// CLIP's defaults would give a SigLIP model wrong pixels
			// (crop, mean and std) without any sign of it.
			return Config{}, fmt.Errorf("%s: a SigLIP model needs its %s (SiglipImageProcessor: stretch resize, mean and std 0.5); CLIP's defaults would be wrong", dir, ConfigFile)
		}
		return DefaultConfig(side), nil
	}
	c, err := LoadConfig(path)
	if err != nil {
		return c, err
	}
	if side != 0 && (c.CropW != side || c.CropH != side) {
		return c, fmt.Errorf("%s: crop %dx%d does not match the model's image_size %d", path, c.CropW, c.CropH, side)
	}
	return c, nil
}

// modelType is config.json's model_type in dir ("" when unreadable).
func modelType(dir string) string {
	var c struct {
		ModelType string `json:"model_type"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.ModelType
}

// SiglipProcessorType is image_processor_type of SigLIP's
// preprocessor_config.json.
const SiglipProcessorType = "SiglipImageProcessor"

// ParseConfig parses the contents of a preprocessor_config.json, as
// transformers' image processors read it (the slow, PIL-based ones).
//
// CLIPImageProcessor (the default): "size" an int (the shortest edge, as
// older CLIP configs give it), {"shortest_edge": N} or {"height": H,
// "width": W}; "crop_size" an int or {"height": H, "width": W}; resample
// bicubic unless given. do_center_crop=false is rejected unless the resize is
// to height x width (pixels are fixed-size).
//
// SiglipImageProcessor ("image_processor_type"): size {"height": H,
// "width": W} (224 x 224 by default), no center crop (the processor has
// none, so crop_size is ignored), mean and std 0.5 unless given. Its
// resample defaults to bicubic too (transformers' SiglipImageProcessor);
// the checkpoints' files name it.
//
// Both: resample 2 (bilinear) or 3 (bicubic); do_resize=false is rejected;
// do_rescale=false makes the rescale 1 and do_normalize=false mean 0 and
// std 1, as the processors skip those steps.
func ParseConfig(raw []byte) (Config, error) {
	var f struct {
		Type          string          `json:"image_processor_type"`
		Size          json.RawMessage `json:"size"`
		CropSize      json.RawMessage `json:"crop_size"`
		DoResize      *bool           `json:"do_resize"`
		DoCenterCrop  *bool           `json:"do_center_crop"`
		DoRescale     *bool           `json:"do_rescale"`
		DoNormalize   *bool           `json:"do_normalize"`
		Mean          []float32       `json:"image_mean"`
		Std           []float32       `json:"image_std"`
		RescaleFactor *float64        `json:"rescale_factor"`
		Resample      *int            `json:"resample"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return Config{}, err
	}
	siglip := f.Type == SiglipProcessorType
	c := DefaultConfig(224)
	if siglip {
		c.Geometry = Geometry{ResizeW: 224, ResizeH: 224, CropW: 224, CropH: 224}
		c.Mean, c.Std = [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5}
	}
	if f.DoResize != nil && !*f.DoResize {
		return Config{}, fmt.Errorf("do_resize=false is not supported (pixels are fixed-size)")
	}
	if f.Resample != nil {
		filter, err := PILFilter(*f.Resample)
		if err != nil {
			return Config{}, err
		}
		c.Filter = filter
	}
	if len(f.Size) > 0 {
		n, hw, err := sizeField(f.Size, "size")
		if err != nil {
			return Config{}, err
		}
		switch {
		case n > 0 && siglip:
			return Config{}, fmt.Errorf("%s: size %s: want {\"height\": H, \"width\": W}", SiglipProcessorType, f.Size)
		case n > 0:
			c.Shortest, c.ResizeW, c.ResizeH = n, 0, 0
		default:
			c.Shortest, c.ResizeW, c.ResizeH = 0, hw[1], hw[0]
		}
	}
	noCrop := siglip || (f.DoCenterCrop != nil && !*f.DoCenterCrop)
	switch {
	case noCrop && c.Shortest > 0:
		return Config{}, fmt.Errorf("do_center_crop=false with a shortest_edge resize is not supported (pixels are fixed-size)")
	case noCrop:
		c.CropW, c.CropH = c.ResizeW, c.ResizeH
	case len(f.CropSize) > 0:
		n, hw, err := sizeField(f.CropSize, "crop_size")
		if err != nil {
			return Config{}, err
		}
		if n > 0 {
			c.CropW, c.CropH = n, n
		} else {
			c.CropW, c.CropH = hw[1], hw[0]
		}
	case len(f.Size) > 0:
		// Without crop_size, crop to the resize target's short side.
		s := c.Shortest
		if s == 0 {
			c.CropW, c.CropH = c.ResizeW, c.ResizeH
		} else {
			c.CropW, c.CropH = s, s
		}
	}
	for name, v := range map[string][]float32{"image_mean": f.Mean, "image_std": f.Std} {
		if v != nil && len(v) != 3 {
			return Config{}, fmt.Errorf("%s has %d values, want 3", name, len(v))
		}
	}
	if f.Mean != nil {
		copy(c.Mean[:], f.Mean)
	}
	if f.Std != nil {
		copy(c.Std[:], f.Std)
		for i, s := range c.Std {
			if s == 0 {
				return Config{}, fmt.Errorf("image_std[%d] is 0", i)
			}
		}
	}
	if f.DoNormalize != nil && !*f.DoNormalize {
		c.Mean, c.Std = [3]float32{}, [3]float32{1, 1, 1}
	}
	if f.RescaleFactor != nil {
		c.Rescale = *f.RescaleFactor
	}
	if f.DoRescale != nil && !*f.DoRescale {
		c.Rescale = 1
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// sizeField parses an int, {"shortest_edge": N} (returned as n) or
// {"height": H, "width": W} (returned as hw).
func sizeField(raw json.RawMessage, name string) (n int, hw [2]int, err error) {
	if err := json.Unmarshal(raw, &n); err == nil {
		if n <= 0 {
			return 0, hw, fmt.Errorf("%s %d must be positive", name, n)
		}
		return n, hw, nil
	}
	var m struct {
		Shortest *int `json:"shortest_edge"`
		Height   *int `json:"height"`
		Width    *int `json:"width"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, hw, fmt.Errorf("%s: want an int or an object: %w", name, err)
	}
	switch {
	case m.Shortest != nil && *m.Shortest > 0:
		return *m.Shortest, hw, nil
	case m.Height != nil && m.Width != nil && *m.Height > 0 && *m.Width > 0:
		return 0, [2]int{*m.Height, *m.Width}, nil
	}
	return 0, hw, fmt.Errorf("%s %s: want a positive shortest_edge or height and width", name, raw)
}

// Normalize writes hwc (uint8 HWC RGB, any number of pixels) into dst as
// float32 CHW: (v*rescale - mean[c]) / std[c], as CLIPImageProcessor's
// rescale (in float64, stored as float32) and normalize (float32) do.
// len(dst) must be len(hwc).
func (c Config) Normalize(dst []float32, hwc []byte) {
	lut := c.LUT()
	normalize(dst, hwc, &lut)
}

// LUT is Normalize as a table: LUT()[c][v] is channel c's normalised value
// of level v. Devices normalise through it (model.VisionForwardImages), so
// their values equal the host's exactly.
func (c Config) LUT() [3][256]float32 { return makeLUT(c.Rescale, c.Mean, c.Std) }

// Normalize is Config.Normalize with the usual 1/255 rescale.
func Normalize(dst []float32, hwc []byte, mean, std [3]float32) {
	lut := makeLUT(1.0/255, mean, std)
	normalize(dst, hwc, &lut)
}

func makeLUT(rescale float64, mean, std [3]float32) [3][256]float32 {
	var lut [3][256]float32
	for ch := range 3 {
		for v := range 256 {
			lut[ch][v] = (float32(float64(v)*rescale) - mean[ch]) / std[ch]
		}
	}
	return lut
}

func normalize(dst []float32, hwc []byte, lut *[3][256]float32) {
	if len(dst) != len(hwc) || len(hwc)%3 != 0 {
		panic(fmt.Sprintf("imageproc.Normalize: dst has %d values for %d bytes of RGB", len(dst), len(hwc)))
	}
	n := len(hwc) / 3
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:3*n]
	for i := range n {
		p := hwc[3*i : 3*i+3 : 3*i+3]
		r[i] = lut[0][p[0]]
		g[i] = lut[1][p[1]]
		b[i] = lut[2][p[2]]
	}
}
