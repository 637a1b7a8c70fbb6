package main

import (
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/parquet"
	"github.com/clipline/clipline/internal/dataset/webdataset"
)

// The sources that carry their images (into image_bytes): flags and wiring.

// drawFlags split the images of the sources that carry none.
type drawFlags struct {
	Split    string  `default:"train" placeholder:"NAME" help:"Split of every image (the train share with --val-frac/--test-frac)."`
	ValFrac  float64 `default:"0" placeholder:"F" help:"Fraction of the images to put in val (seeded draw over the input order)."`
	TestFrac float64 `default:"0" placeholder:"F" help:"Fraction of the images to put in test (seeded draw over the input order)."`
	Seed     uint64  `default:"1" placeholder:"N" help:"Seed of the --val-frac/--test-frac draw."`
}

func (d drawFlags) fractions() dataset.Fractions {
	return dataset.Fractions{Val: d.ValFrac, Test: d.TestFrac, Seed: d.Seed}
}

type webdatasetCmd struct {
	Shards  []string `arg:"" placeholder:"SHARD.tar|DIR" help:"Tar shards (.tar, .tar.gz), or directories of them (their *.tar, *.tar.gz, *.tgz in name order)."`
	SkipBad bool     `help:"Skip bad samples (no image, no caption, two images, unreadable; counted on stderr) instead of failing."`
	drawFlags
}

type parquetCmd struct {
	Files         []string `arg:"" placeholder:"FILE|DIR" help:"Parquet files, or directories of them (their *.parquet in name order)."`
	ImageColumn   string   `placeholder:"NAME" help:"Image column: binary, or Hugging Face's Image struct {bytes, path} (default: the first of image, jpg, png, webp, img)."`
	CaptionColumn string   `placeholder:"NAME" help:"Caption column: string or list of strings (default: the first of caption, captions, text, txt)."`
	IDColumn      string   `name:"id-column" placeholder:"NAME" help:"Image id column (default: the first of image_id, key, id, img_id; without one, FILESTEM/ROW)."`
	SkipBad       bool     `help:"Skip bad rows (null or unreadable image, null or empty caption, null id; counted on stderr) instead of failing."`
	drawFlags
}

func (w *webdatasetCmd) Run(e *env) error {
	shards, err := webdataset.Shards(w.Shards)
	if err != nil {
		return err
	}
	o, err := e.writeOptions()
	if err != nil {
		return err
	}
	_, err = webdataset.Prepare(shards, webdataset.PrepareOptions{Split: w.Split, Draw: w.fractions(),
		SkipBad: w.SkipBad, Log: e.stderr}, o)
	return err
}

func (p *parquetCmd) Run(e *env) error {
	files, err := parquet.Files(p.Files)
	if err != nil {
		return err
	}
	o, err := e.writeOptions()
	if err != nil {
		return err
	}
	_, err = parquet.Prepare(files, parquet.Options{ImageColumn: p.ImageColumn, CaptionColumn: p.CaptionColumn,
		IDColumn: p.IDColumn, Split: p.Split, Draw: p.fractions(), SkipBad: p.SkipBad, Log: e.stderr}, o)
	return err
}
