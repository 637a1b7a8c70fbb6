package train

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/model"
)

// Test backend: one worker keeps results bit-reproducible and the tests
// light on the 2-core machine.
func testBackend() backend.Backend { return cpu.NewWorkers(1) }

// tinyModelDir saves a random tiny CLIP (the golden tiny-clip
// architecture) with stand-in tokenizer and preprocessor files.
func tinyModelDir(t testing.TB) string {
	t.Helper()
	return modelDir(t, model.TinyConfig())
}

// modelDir saves a random model of cfg (32 px images) with stand-in
// tokenizer and preprocessor files.
func modelDir(t testing.TB, cfg model.Config) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	m, err := model.New(cfg, testBackend(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"vocab.json":               `{"a</w>": 0}`,
		"merges.txt":               "#version: 0.2\n",
		"preprocessor_config.json": `{"crop_size": 32, "size": 32, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	tinySide = 32
	tinyCtx  = 16
	tinyEOT  = 511 // the largest id: CLIP pools at the argmax
)

// synthData makes nImages images (blocky random colours, each image its own
// pattern) with capsPer captions each; the captions of an image share a
// "topic" token so retrieval is learnable.
func synthData(seed uint64, nImages, capsPer int) *Data {
	r := rand.New(rand.NewPCG(seed, 7))
	d := &Data{Name: "synthetic", Side: tinySide, Context: tinyCtx, Pixels: NewImages(tinySide)}
	per := tinySide * tinySide * 3
	for i := 0; i < nImages; i++ {
		d.ImageIDs = append(d.ImageIDs, string(rune('A'+i)))
		px := make([]byte, per)
		// 4x4 blocks of a random colour each.
		cols := make([][3]byte, 16)
		for k := range cols {
			cols[k] = [3]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
		}
		for y := 0; y < tinySide; y++ {
			for x := 0; x < tinySide; x++ {
				c := cols[(y/8)*4+x/8]
				copy(px[(y*tinySide+x)*3:], c[:])
			}
		}
		d.Pixels.Append(px)
		for j := 0; j < capsPer; j++ {
			toks := make([]int32, tinyCtx)
			toks[0] = 500
			toks[1] = int32(1 + i*7%400)
			toks[2] = int32(1 + (i*13+j*3)%400)
			toks[3] = int32(2 + j)
			toks[4] = tinyEOT
			d.Tokens = append(d.Tokens, toks...)
			d.Captions = append(d.Captions, string(rune('a'+i))+string(rune('0'+j)))
			d.PairImage = append(d.PairImage, int32(i))
		}
	}
	return d
}

// testConfig is a small, fast configuration for the tiny model.
func testConfig(modelDir, out string) config.Config {
	c := config.Default()
	c.ModelNameOrPath = modelDir
	c.OutputDir = out
	c.Epochs = 2
	c.BatchSize = 8
	c.LearningRate = 1e-3
	c.LoRAR = 4
	c.LoRAAlpha = 8
	c.LoRADropout = 0
	c.WarmupRatio = 0
	c.SchedulerType = "constant"
	c.LoggingSteps = 1
	c.EvalStrategy = "no"
	c.SaveStrategy = "no"
	return c
}

func newTrainer(t testing.TB, c config.Config, modelDir string, tr, val *Data, resume string, log io.Writer) *Trainer {
	t.Helper()
	if log == nil {
		log = io.Discard
		if testing.Verbose() {
			log = &testLog{t: t}
		}
	}
	tt, err := New(Options{Config: c, ModelDir: modelDir, Backend: testBackend(), Train: tr, Val: val, Resume: resume, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tt.Close)
	return tt
}

type testLog struct {
	t   testing.TB
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			break
		}
		l.t.Log(line[:len(line)-1])
	}
	return len(p), nil
}

// hostParams downloads every parameter of m by name.
func hostParams(m *model.Model) map[string][]float32 {
	out := map[string][]float32{}
	be := m.Backend()
	for _, p := range m.Params() {
		v := make([]float32, p.W.Len())
		be.Download(v, p.W)
		out[p.Name] = v
	}
	return out
}

// hostGrads downloads the gradients of the trainable parameters.
func hostGrads(tr *Trainer) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range tr.Params() {
		v := make([]float32, p.G.Len())
		tr.be.Download(v, p.G)
		out[p.Name] = v
	}
	return out
}
