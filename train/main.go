// Command train fine-tunes a CLIP or SigLIP model on the (caption, image)
// pairs of a clipline stream with symmetric InfoNCE or SigLIP's sigmoid
// loss (loss_type), and writes checkpoints in Hugging Face layout (merged
// model, PEFT adapter, trainer state).
//
//	train --model DIR|HF-id [--config FILE] [--set key=value ...] [--out DIR]
//	      [--in FILE] [--val FILE] [--train-split train] [--val-split val]
//	      [--resume DIR] [--overwrite] [--device cpu]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/device"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/train"
	"github.com/clipline/clipline/internal/traindata"
)

const description = `Fine-tune CLIP for text-to-image retrieval.

Reads an Arrow IPC stream (stdin by default) with one row per image:
captions and caption_tokens (run tokenize), and pixels (run decode) or
image_path or image_bytes (decoded here with the model's preprocessor, by
decode's code).
Rows of split --train-split train; rows of --val-split validate (or those of
--val FILE). Every (caption, image) pair is visited once per epoch.

Pixels are read through a memory map of the input, so train's own memory
holds the (caption, image) pairs and tokens, not the images: an Arrow IPC
file (--in X.arrow) with pixels, uncompressed, is mapped as it is; any other
input (stdin, a stream, a compressed file, rows with image_path or
image_bytes instead of pixels, decoded here as decode does) is first spooled
into --cache-dir as such a file. A file's spool is reused while the file is
unchanged (same size and time), so --resume of an interrupted run finds it.

Or, as vembed-factory does, the configuration's data_path (and
val_data_path) names a JSONL file ({"query": TEXT, "positive": PATH} lines),
Karpathy's Flickr30k JSON, the Flickr30k CSV or a clipline stream: train
prepares, tokenizes and decodes it for the model itself (image paths resolved
against image_root) and caches the result in $CLIPLINE_CACHE/data (default
~/.cache/clipline/data), keyed by the files' bytes, the images' sizes and
times and the model's tokenizer and preprocessing, so a rerun starts at once.
--in and --val take precedence over data_path and val_data_path.

The configuration uses vembed-factory's YAML keys (model_name_or_path,
use_lora, lora_r, batch_size, learning_rate, scheduler_type, warmup_ratio,
temperature, use_gradient_cache, use_mrl, eval_strategy, save_steps, ...;
see examples/clip_text_to_image.yaml). Precedence: these flags > --set >
--config file > defaults. Unknown keys are warned about, bad values are
errors. loss_type is infonce (CLIP's symmetric InfoNCE, the default) or
sigmoid (SigLIP's pairwise sigmoid loss; the model needs a logit_bias, as
SigLIP models have).

Output in --out (output_dir): checkpoint-STEP/ (merged model in Hugging Face
layout with tokenizer and preprocessor files, PEFT adapter in adapter/, trainer state
for --resume), best/ (highest validation t2i R@1), final/, metrics.jsonl.
A non-empty --out is refused unless --resume continues the run in it or
--overwrite starts over (removing only clipline's files). save_total_limit
keeps the newest checkpoints, max_steps ends the run early, save_only_model
skips optimizer state (such checkpoints cannot be resumed).

Ctrl-C (SIGINT) or SIGTERM: the current step finishes, a checkpoint is
saved, the resume command is printed and train exits 130 (143); a second
signal stops at once.`

type command struct {
	Model       string   `placeholder:"DIR|ID" help:"Base model: a checkpoint directory or a Hugging Face id (model_name_or_path)."`
	Config      string   `type:"existingfile" placeholder:"FILE" help:"YAML configuration (vembed-factory keys)."`
	Set         []string `placeholder:"KEY=VALUE" sep:"none" help:"Override one configuration key; repeatable (e.g. --set batch_size=64)."`
	Out         string   `placeholder:"DIR" help:"Output directory (output_dir)."`
	In          string   `placeholder:"FILE" stdin:"an Arrow stream of tokenized rows with pixels or image_path; pass --in FILE or pipe one: tokenize ... | decode ... | train" help:"Input stream (- is stdin; default: data_path of the configuration, else stdin)."`
	Val         string   `placeholder:"FILE" stdin:"a validation Arrow stream; pass --val FILE" help:"Validation stream (its --val-split rows, or all rows if it has no split column) instead of the input's (or val_data_path)."`
	TrainSplit  string   `placeholder:"NAME" help:"Split to train on (train_split; default train)."`
	ValSplit    string   `placeholder:"NAME" help:"Split to validate on (val_split; default val)."`
	ImageRoot   string   `placeholder:"DIR" help:"Resolve relative image paths against DIR (image_root; when the stream has no pixels, and for data_path)."`
	CacheDir    string   `placeholder:"DIR" help:"Spool inputs that cannot be memory-mapped as they are (stdin, streams, compressed files, rows without pixels) into DIR as Arrow IPC files (cache_dir; default: output_dir/cache, removed when the run ends unless interrupted)."`
	Resume      string   `type:"existingdir" placeholder:"DIR" help:"Continue from a checkpoint-STEP directory of an earlier run (an interrupted run prints it)."`
	Overwrite   bool     `help:"Start over in a non-empty --out, removing the earlier run's clipline files (overwrite_output_dir)."`
	FromScratch bool     `help:"Initialise weights randomly from --model DIR's config.json (seeded by seed) instead of loading them: pretraining."`
	Device      string   `placeholder:"NAME" help:"Compute device (device): cpu (default), cuda, cuda:N, optionally with ,bf16 or ,fp32; cuda needs a CUDA build."`
	PrintConfig bool     `help:"Print the effective configuration as YAML and exit."`
}

func main() { cli.Main("train", run) }

func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("train", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	return c.run(stdout, stderr)
}

// flags are the flags that set configuration keys (empty: not given).
func (c *command) flags() []config.Flag {
	return []config.Flag{{Key: "model_name_or_path", Name: "--model", Value: c.Model}, {Key: "output_dir", Name: "--out", Value: c.Out},
		{Key: "train_split", Name: "--train-split", Value: c.TrainSplit}, {Key: "val_split", Name: "--val-split", Value: c.ValSplit},
		{Key: "device", Name: "--device", Value: c.Device}, {Key: "image_root", Name: "--image-root", Value: c.ImageRoot},
		{Key: "cache_dir", Name: "--cache-dir", Value: c.CacheDir}, {Key: "overwrite_output_dir", Name: "--overwrite", Value: map[bool]string{true: "true"}[c.Overwrite]}}
}

func (c *command) run(stdout, stderr io.Writer) (err error) {
	l, err := config.Load(config.Options{File: c.Config, Sets: c.Set, Flags: c.flags(), Warn: stderr})
	if err != nil {
		return err
	}
	cfg := l.Config
	if c.PrintConfig {
		_, err := io.WriteString(stdout, cfg.YAML())
		return err
	}
	src, err := traindata.Resolve(c.In, c.Val, cfg, l.Where, os.Stdin, stderr)
	if err != nil {
		return err
	}
	if err := train.CheckOutputDir(cfg, c.Resume, stderr); err != nil { // before the data is read
		return err
	}
	be, err := device.Open(cfg.Device)
	if err != nil {
		return fmt.Errorf("device %s (%s): %w", cfg.Device, l.Where("device"), err)
	}
	defer device.Close(be)
	dir, err := hub.Model(cfg.ModelNameOrPath, stderr)
	if err != nil {
		return err
	}
	ro, err := train.ModelReadOptions(dir)
	if err != nil {
		return err
	}
	trainData, valData, err := src.Load(dir, ro)
	defer func() { // after the trainer's Close: its prefetch reads the map
		var stopped *train.Interrupted
		if cerr := src.Close(errors.As(err, &stopped)); err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return err
	}

	stop, done := cli.CatchInterrupt(context.Background(), "finishing the current step to save a checkpoint")
	defer done()
	t, err := train.New(train.Options{Config: cfg, ModelDir: dir, Backend: be, Train: trainData, Val: valData,
		Resume: c.Resume, FromScratch: c.FromScratch, Log: stderr, Stop: stop})
	if err != nil {
		return l.Locate(err)
	}
	defer t.Close()
	_, err = t.Run()
	return err
}
