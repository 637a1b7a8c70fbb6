#!/usr/bin/env python3
"""PyTorch side of clipline's GPU benchmark (scripts/gpu/run.sh).

    bench_torch.py save  --model-dir DIR            # random ViT-B/32 CLIP, safetensors
    bench_torch.py bench --model-dir DIR --out F    # LoRA training + image embedding
    bench_torch.py merge --torch T --clipline C... --out bench.json

`save` builds transformers' CLIPModel(CLIPConfig()) (ViT-B/32 sized, random
weights, fixed seed, nothing downloaded) and writes it with save_pretrained
(safetensors), so clipline loads exactly the same weights. `bench` measures,
on the same card clipline runs on: LoRA training (PEFT when installed, else
an equivalent hand-written LoRA) at the given batch with bf16 autocast and
SDPA attention, pairs/s and peak memory; and image embedding throughput.
Every section catches its own errors, so one failure still leaves figures
of the rest (we get one run on the GPU machine).
"""
import argparse
import json
import math
import os
import sys
import time
import traceback


def log(*a):
    print("[bench_torch]", *a, file=sys.stderr, flush=True)


def versions():
    v = {"python": sys.version.split()[0]}
    for mod in ("torch", "transformers", "peft", "safetensors", "numpy"):
        try:
            m = __import__(mod)
            v[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001
            v[mod] = "missing (%s)" % e.__class__.__name__
    try:
        import torch
        v["cuda_runtime"] = torch.version.cuda
        if torch.cuda.is_available():
            v["gpu"] = torch.cuda.get_device_name(0)
            v["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001
        pass
    return v


def cmd_save(a):
    import torch
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(a.seed)
    model = CLIPModel(CLIPConfig())
    os.makedirs(a.model_dir, exist_ok=True)
    model.save_pretrained(a.model_dir, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    log("saved random CLIPModel(CLIPConfig()) with %d parameters to %s" % (n, a.model_dir))


def load_model(model_dir, attn):
    import torch
    from transformers import CLIPModel
    kw = {"torch_dtype": torch.float32}
    if attn:
        try:
            m = CLIPModel.from_pretrained(model_dir, attn_implementation=attn, **kw)
            return m, attn
        except Exception as e:  # noqa: BLE001
            log("attn_implementation=%s unavailable (%s); using the default" % (attn, e))
    return CLIPModel.from_pretrained(model_dir, **kw), "default"


class ManualLoRA(object):
    """PEFT's LoRA on nn.Linear, for machines without peft installed."""

    @staticmethod
    def apply(model, targets, r, alpha, dropout):
        import torch
        import torch.nn as nn

        class LoRALinear(nn.Module):
            def __init__(self, base):
                super().__init__()
                self.base = base
                self.lora_A = nn.Linear(base.in_features, r, bias=False)
                self.lora_B = nn.Linear(r, base.out_features, bias=False)
                nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
                nn.init.zeros_(self.lora_B.weight)
                self.drop = nn.Dropout(dropout)
                self.scale = alpha / r

            def forward(self, x):
                return self.base(x) + self.lora_B(self.lora_A(self.drop(x))) * self.scale

        for p in model.parameters():
            p.requires_grad_(False)
        n = 0
        for name, mod in list(model.named_modules()):
            for child_name, child in list(mod.named_children()):
                if isinstance(child, nn.Linear) and child_name in targets:
                    setattr(mod, child_name, LoRALinear(child))
                    n += 1
        return model, n


def apply_lora(model, a):
    targets = a.lora_targets.split(",")
    try:
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
                         target_modules=targets, bias="none")
        return get_peft_model(model, cfg), "peft"
    except Exception as e:  # noqa: BLE001
        log("peft unavailable (%s: %s); using the built-in LoRA" % (e.__class__.__name__, e))
        model, n = ManualLoRA.apply(model, targets, a.lora_r, a.lora_alpha, a.lora_dropout)
        return model, "manual (%d layers)" % n


def random_batch(cfg, B, eot_min, eot_max, gen):
    import torch
    S = cfg.vision_config.image_size
    T = cfg.text_config.max_position_embeddings
    V = cfg.text_config.vocab_size
    pix = torch.randn(B, 3, S, S, generator=gen)
    ids = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        eot = min(T - 1, eot_min + int(torch.randint(0, max(1, eot_max - eot_min + 1), (1,), generator=gen)))
        ids[b, 0] = V - 2
        if eot > 1:
            ids[b, 1:eot] = torch.randint(0, V - 2, (eot - 1,), generator=gen)
        ids[b, eot] = V - 1  # the largest id: CLIP pools here (argmax)
    return pix, ids


def sync():
    import torch
    torch.cuda.synchronize()


def bench_embed(a, res):
    import torch
    dev = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model, attn = load_model(a.model_dir, a.attn)
    model.to(dev).eval()
    gen = torch.Generator().manual_seed(3)
    pix, _ = random_batch(model.config, a.embed_batch, 1, 1, gen)
    pix = pix.pin_memory()

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            f = model.get_image_features(pixel_values=pix.to(dev, non_blocking=True))
        if not torch.is_tensor(f):  # some transformers releases return a model output
            for name in ("image_embeds", "pooler_output"):
                if torch.is_tensor(getattr(f, name, None)):
                    f = getattr(f, name)
                    break
            else:
                f = f[0]
        return f.float().cpu()  # as clipline's embed: every batch back to the host

    for _ in range(a.warmup):
        run()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.embed_batches):
        run()
    sync()
    el = time.perf_counter() - t0
    res["embed"] = {
        "label": "pytorch", "attn_implementation": attn, "batch": a.embed_batch,
        "batches": a.embed_batches, "seconds": el,
        "images_per_s": a.embed_batch * a.embed_batches / el,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
    }
    log("embed: %.1f images/s" % res["embed"]["images_per_s"])
    del model
    torch.cuda.empty_cache()


def bench_train(a, res):
    import torch
    dev = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model, attn = load_model(a.model_dir, a.attn)
    model, lora_impl = apply_lora(model, a)
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    cfg = model.config if hasattr(model, "config") else model.base_model.config
    gen = torch.Generator().manual_seed(1)
    batches = [random_batch(cfg, a.batch, a.eot_min, a.eot_max, gen) for _ in range(4)]
    batches = [(p.pin_memory(), i.pin_memory()) for p, i in batches]
    losses = []

    def step(s):
        pix, ids = batches[s % len(batches)]
        pix = pix.to(dev, non_blocking=True)
        ids = ids.to(dev, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, pixel_values=pix, return_loss=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    for s in range(a.warmup):
        losses.append(float(step(s)))
    sync()
    t0 = time.perf_counter()
    last = None
    for s in range(a.warmup, a.warmup + a.steps):
        last = step(s)
    sync()
    el = time.perf_counter() - t0
    losses.append(float(last))
    res["train"] = {
        "label": "pytorch", "attn_implementation": attn, "lora": lora_impl,
        "lora_r": a.lora_r, "lora_alpha": a.lora_alpha, "lora_dropout": a.lora_dropout,
        "batch": a.batch, "steps": a.steps, "seconds": el, "step_ms": 1000 * el / a.steps,
        "pairs_per_s": a.batch * a.steps / el, "params": total, "trainable_params": trainable,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
        "loss_first": losses[0], "loss_last": losses[-1], "eot_range": [a.eot_min, a.eot_max],
    }
    log("train: %.1f pairs/s, peak %.0f MiB" % (res["train"]["pairs_per_s"], res["train"]["peak_allocated_bytes"] / 2**20))
    del model, opt
    torch.cuda.empty_cache()


def cmd_bench(a):
    res = {"versions": versions()}
    log("versions:", json.dumps(res["versions"]))
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = True  # PyTorch users' usual setting; bf16 autocast anyway
        torch.backends.cudnn.allow_tf32 = True
    except Exception as e:  # noqa: BLE001
        res["error"] = "torch: %s" % e
    for name, fn in (("embed", bench_embed), ("train", bench_train)):
        if name not in a.only:
            continue
        try:
            fn(a, res)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            res[name] = {"error": "%s: %s" % (e.__class__.__name__, e)}
        with open(a.out, "w") as f:  # after every section, in case the next one dies
            json.dump(res, f, indent=2)
    failed = [k for k, v in res.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed or "error" in res else 0


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        return {"error": "%s: %s" % (path, e)}


def faster(first, repeat, key, rate):
    """The run of first[key] and repeat[key] with the higher rate: ratios are
    taken against PyTorch's better measurement (its speed varies between
    runs on the same machine)."""
    a, b = first.get(key, {}), (repeat or {}).get(key, {})
    return b if (b.get(rate) or 0) > (a.get(rate) or 0) else a


def cmd_merge(a):
    torch_res = load_json(a.torch)
    repeat = load_json(a.torch_repeat) if a.torch_repeat else None
    out = {"pytorch": torch_res, "clipline": {}}
    if repeat:
        out["pytorch_repeat"] = repeat
    for path in a.clipline:
        r = load_json(path)
        out["clipline"][os.path.basename(path).rsplit(".", 1)[0]] = r
    summary = {}

    def ratio(x, y):
        try:
            return x / y
        except Exception:  # noqa: BLE001
            return None

    pt_train = faster(torch_res, repeat, "train", "pairs_per_s")
    pt_embed = faster(torch_res, repeat, "embed", "images_per_s")
    # Memory against PyTorch's smaller peak, likewise the stricter comparison.
    peaks = [r.get("train", {}).get("peak_allocated_bytes") for r in (torch_res, repeat) if r]
    peaks = [p for p in peaks if p]
    pt_peak = min(peaks) if peaks else None
    for key, r in out["clipline"].items():
        if "pairs_per_s" in r:
            summary[key] = {
                "pairs_per_s": r.get("pairs_per_s"),
                "speedup_vs_pytorch": ratio(r.get("pairs_per_s"), pt_train.get("pairs_per_s")),
                "peak_allocated_MiB": (r.get("peak_allocated_bytes") or 0) / 2**20,
                "memory_vs_pytorch": ratio(r.get("peak_allocated_bytes"), pt_peak),
            }
        if "images_per_s" in r:
            summary[key] = {
                "images_per_s": r.get("images_per_s"),
                "speedup_vs_pytorch": ratio(r.get("images_per_s"), pt_embed.get("images_per_s")),
            }
    summary["pytorch_train_pairs_per_s"] = pt_train.get("pairs_per_s")
    summary["pytorch_train_pairs_per_s_runs"] = [r.get("train", {}).get("pairs_per_s") for r in (torch_res, repeat) if r]
    summary["pytorch_embed_images_per_s_runs"] = [r.get("embed", {}).get("images_per_s") for r in (torch_res, repeat) if r]
    summary["pytorch_train_peak_allocated_MiB"] = (pt_peak or 0) / 2**20
    summary["pytorch_embed_images_per_s"] = pt_embed.get("images_per_s")
    out["summary"] = summary
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(summary, indent=2))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["save", "bench", "merge", "versions"])
    p.add_argument("--model-dir")
    p.add_argument("--out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attn", default="sdpa")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--embed-batch", type=int, default=256)
    p.add_argument("--embed-batches", type=int, default=20)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,out_proj")
    p.add_argument("--eot-min", type=int, default=76)
    p.add_argument("--eot-max", type=int, default=76)
    p.add_argument("--only", default="embed,train")
    p.add_argument("--torch")
    p.add_argument("--torch-repeat", help="a second PyTorch run; ratios use the faster of the two")
    p.add_argument("--clipline", nargs="*", default=[])
    a = p.parse_args()
    if a.cmd == "versions":
        print(json.dumps(versions(), indent=2))
        return 0
    if a.cmd == "save":
        return cmd_save(a)
    if a.cmd == "bench":
        return cmd_bench(a)
    return cmd_merge(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
