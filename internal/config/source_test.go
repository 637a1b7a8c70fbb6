package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/device"
)

// TestErrorsNameTheSource: a bad value is reported as coming from the file
// and line, the --set argument, the flag, or the default, whichever set it.
func TestErrorsNameTheSource(t *testing.T) {
	f := writeFile(t, "model_name_or_path: m\n\nepochs: 0\ndevice: tpu\n")
	model := []Flag{{Key: "model_name_or_path", Name: "--model", Value: "m"}}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"file", Options{File: f, Sets: []string{"device=cpu"}},
			`config: ` + f + `:3: bad value "0" for epochs: want at least 1`},
		{"set", Options{File: f, Sets: []string{"epochs=1", "device=cuda:x"}},
			`config: --set device=cuda:x: bad value "cuda:x" for device: device "cuda:x": bad GPU ordinal "x" (want ` + device.Syntax + `)`},
		{"flag", Options{File: f, Sets: []string{"epochs=1"}, Flags: []Flag{{Key: "device", Name: "--device", Value: "cpu,bf16"}}},
			`config: flag --device: bad value "cpu,bf16" for device: device cpu,bf16 is for inference (embed, serve); training on the CPU is fp32: use cpu`},
		{"flag decode", Options{Flags: append(model, Flag{Key: "output_dir", Name: "--out", Value: "[a, b]"})},
			`config: flag --out: bad value "[a, b]" for output_dir: want a string`},
		{"default", Options{},
			`config: bad value "" for model_name_or_path (its default): empty: give --model DIR or a Hugging Face id`},
	} {
		_, err := Load(Options{File: tc.o.File, Sets: tc.o.Sets, Flags: tc.o.Flags, Warn: &bytes.Buffer{}})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.name, err, tc.want)
		}
	}
}

// exampleLine is the path of the shipped example and the line of key in it.
func exampleLine(t *testing.T, key string) (string, int) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "examples", "clip_text_to_image.yaml")
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		if strings.HasPrefix(sc.Text(), key+":") {
			return p, n
		}
	}
	t.Fatalf("%s has no %s line", p, key)
	return "", 0
}

// TestLocate: a check made after Load (the trainer's mrl_dims against the
// model's projection) names the file and line of the value, as written.
func TestLocate(t *testing.T) {
	p, line := exampleLine(t, "mrl_dims")
	l, _ := load(t, Options{File: p, Sets: []string{"use_mrl=true"}})
	late := func(key, val string) error {
		return fmt.Errorf("train: %w", &ValueError{Key: key, Value: val, Reason: "dimension 512 exceeds the model's projection_dim 128"})
	}
	err := l.Locate(late("mrl_dims", fmt.Sprint(l.Config.MRLDims)))
	want := fmt.Sprintf(`train: config: %s:%d: bad value "[512, 256, 128]" for mrl_dims: dimension 512 exceeds the model's projection_dim 128`, p, line)
	if err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Source != FromFile {
		t.Errorf("source %v, want file", ve.Source)
	}
	l, _ = load(t, Options{File: p, Sets: []string{"use_mrl=true", "mrl_dims=512,64"}})
	if got := l.Locate(late("mrl_dims", "[512 64]")).Error(); !strings.HasPrefix(got, `train: config: --set mrl_dims=512,64: bad value "[512, 64]" for mrl_dims:`) {
		t.Errorf("--set: %s", got)
	}
	l, _ = load(t, Options{Sets: []string{"model_name_or_path=m", "use_mrl=true", "mrl_dims=8"}})
	if got := l.Locate(late("lora_r", "16")).Error(); !strings.HasPrefix(got, `train: config: bad value "16" for lora_r (its default):`) {
		t.Errorf("default: %s", got)
	}
	if l.Where("lora_r") != "default" || l.Where("use_mrl") != "--set use_mrl=true" {
		t.Errorf("Where: %q %q", l.Where("lora_r"), l.Where("use_mrl"))
	}
}

// TestUnknownKeysNameTheLine: warnings about unknown and ignored keys name
// the file and line.
func TestUnknownKeysNameTheLine(t *testing.T) {
	f := writeFile(t, "model_name_or_path: m\nreport_to: wandb\n\nbatch_sise: 8\n")
	_, warn := load(t, Options{File: f})
	want := "warning: " + f + `:2: key "report_to" ignored: wandb is not supported; report_to: tensorboard writes TensorBoard event files, and output_dir/metrics.jsonl is always written` + "\n" +
		"warning: " + f + `:4: unknown key "batch_sise" ignored (did you mean "batch_size"?)` + "\n"
	if warn != want {
		t.Errorf("got\n%s\nwant\n%s", warn, want)
	}
}

// TestPrecisionKeys: bf16: true selects the device's bf16 mode where it has
// one and says so in one line; on the CPU one line says it is ignored.
func TestPrecisionKeys(t *testing.T) {
	dev := func(v string) []Flag { return []Flag{{Key: "device", Name: "--device", Value: v}} }
	for _, tc := range []struct {
		name   string
		yaml   string
		sets   []string
		flags  []Flag
		device string
		note   string // F stands for the file
	}{
		{"cuda", "bf16: true\n", nil, dev("cuda"), "cuda,bf16",
			"config: bf16: true (F:2): device cuda,bf16 (bf16 matrix products, float32 accumulation and weights)\n"},
		{"cuda from file", "bf16: true\ndevice: cuda:1\n", nil, nil, "cuda:1,bf16",
			"config: bf16: true (F:2): device cuda:1,bf16 (bf16 matrix products, float32 accumulation and weights)\n"},
		{"set", "", []string{"bf16=true"}, dev("cuda:2"), "cuda:2,bf16",
			"config: bf16: true (--set bf16=true): device cuda:2,bf16 (bf16 matrix products, float32 accumulation and weights)\n"},
		{"named precision", "bf16: true\n", nil, dev("cuda,tf32"), "cuda,tf32",
			"config: bf16: true (F:2) ignored: device cuda,tf32 (from flag --device) names its precision\n"},
		{"cpu default", "bf16: true\n", nil, nil, "cpu",
			"config: bf16: true (F:2) ignored: training on cpu is float32 (device cpu from default)\n"},
		{"cpu both once", "bf16: true\nfp16: true\ndevice: cpu\n", nil, nil, "cpu",
			"config: bf16: true (F:2), fp16: true (F:3) ignored: training on cpu is float32 (device cpu from F:4)\n"},
		{"fp16 cuda", "fp16: true\n", nil, dev("cuda"), "cuda",
			"config: fp16: true (F:2) ignored: clipline has no fp16 mode; bf16: true (device cuda:0,bf16) gives bf16 matrix products\n"},
		{"false", "bf16: false\nfp16: false\n", []string{"bf16=true", "bf16=false"}, dev("cuda"), "cuda", ""},
	} {
		f := writeFile(t, "model_name_or_path: m\n"+tc.yaml)
		l, out := load(t, Options{File: f, Sets: tc.sets, Flags: tc.flags})
		if l.Config.Device != tc.device {
			t.Errorf("%s: device %q, want %q", tc.name, l.Config.Device, tc.device)
		}
		if want := strings.ReplaceAll(tc.note, "F:", f+":"); out != want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, out, want)
		}
		if len(l.Warnings) != 0 {
			t.Errorf("%s: warnings %q", tc.name, l.Warnings)
		}
	}
	f := writeFile(t, "model_name_or_path: m\nbf16: maybe\n")
	_, err := Load(Options{File: f, Warn: &bytes.Buffer{}})
	if want := `config: ` + f + `:2: bad value "maybe" for bf16: want true or false`; err == nil || err.Error() != want {
		t.Errorf("bad bf16:\n got %v\nwant %s", err, want)
	}
}

// TestReportTo: tensorboard (or Hugging Face's all) turns the event files
// on, none leaves them off and out of the rendered config, and another
// integration is a warning that names the alternatives, from --set too.
func TestReportTo(t *testing.T) {
	for _, tc := range []struct {
		set  string
		tb   bool
		warn string
	}{
		{"report_to=tensorboard", true, ""},
		{"report_to=all", true, ""},
		{"report_to=none", false, ""},
		{"report_to=wandb", false, `warning: --set report_to=wandb: key "report_to" ignored: wandb is not supported; report_to: tensorboard writes TensorBoard event files, and output_dir/metrics.jsonl is always written` + "\n"},
	} {
		l, warn := load(t, Options{Sets: []string{"model_name_or_path=m", tc.set}})
		if l.Config.TensorBoard() != tc.tb || warn != tc.warn {
			t.Errorf("%s: tensorboard %v, warnings %q; want %v, %q", tc.set, l.Config.TensorBoard(), warn, tc.tb, tc.warn)
		}
		if y := l.Config.YAML(); strings.Contains(y, "report_to") != tc.tb {
			t.Errorf("%s: rendered config:\n%s", tc.set, y)
		}
	}
	c := Default()
	c.ModelNameOrPath, c.ReportTo = "m", "mlflow"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "report_to") {
		t.Errorf("Validate with report_to mlflow: %v", err)
	}
}
