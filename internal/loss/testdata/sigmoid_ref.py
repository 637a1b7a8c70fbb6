#!/usr/bin/env python3
"""Reference values of SigLIP's sigmoid loss and its gradients for
internal/loss's TestSigmoidReference, computed by PyTorch autograd in float64.

The loss is transformers' SiglipModel.forward(return_loss=True) as of
transformers 4.47 (modeling_siglip.py), written out here since Debian's
python3-torch has no transformers:

    image_embeds = image_embeds / image_embeds.norm(p=2, dim=-1, keepdim=True)
    text_embeds  = text_embeds / text_embeds.norm(p=2, dim=-1, keepdim=True)
    logits_per_text = text_embeds @ image_embeds.t() * logit_scale.exp() + logit_bias
    eye = torch.eye(n); m1_diag1 = -torch.ones_like(logits_per_text) + 2 * eye
    loglik = F.logsigmoid(m1_diag1 * logits_per_text)
    loss = (-torch.sum(loglik, dim=-1)).mean()

with clipline's two extensions: a positive mask (labels +1 for every pair of
texts and images that show the same image, given by image ids) and
Matryoshka prefixes (the loss summed over prefix lengths d, each prefix
normalised on its own). A fixed temperature T replaces exp(logit_scale) by
1/T (no logit_scale gradient), T rounded to float32 as the Go options hold it.

Inputs are float32 (as the Go loss receives them), the arithmetic float64.

  /usr/bin/python3 sigmoid_ref.py > sigmoid_ref.json
"""
import json
import math

import torch
import torch.nn.functional as F


def siglip_loss(img, txt, logit_scale, logit_bias, image_ids=None, dims=None, temperature=0.0):
    n, D = img.shape
    if image_ids is None:
        labels = 2 * torch.eye(n, dtype=torch.float64) - 1
    else:
        ids = torch.tensor(image_ids)
        labels = 2 * (ids[:, None] == ids[None, :]).double() - 1
    scale = torch.tensor(1 / temperature, dtype=torch.float64) if temperature > 0 else logit_scale.exp()
    total = 0
    for d in dims or [D]:
        u = F.normalize(img[:, :d], dim=-1)
        v = F.normalize(txt[:, :d], dim=-1)
        logits_per_text = v @ u.t() * scale + logit_bias  # [text j, image i]
        # labels are symmetric, so the orientation does not matter
        total = total + (-F.logsigmoid(labels * logits_per_text).sum(dim=-1)).mean()
    return total


def case(name, gen, n, D, logit_scale, logit_bias, image_ids=None, dims=None, temperature=0.0, spread=1.0):
    temperature = float(torch.tensor(temperature, dtype=torch.float32))  # as Go holds it
    img32 = (torch.randn(n, D, generator=gen) * spread).float()
    txt32 = (torch.randn(n, D, generator=gen) * spread).float()
    # Make pair i's text resemble image i, so the loss sees real positives.
    txt32 = (txt32 + 1.5 * img32).float()
    img = img32.double().requires_grad_()
    txt = txt32.double().requires_grad_()
    ls = torch.tensor(logit_scale, dtype=torch.float32).double().requires_grad_()
    lb = torch.tensor(logit_bias, dtype=torch.float32).double().requires_grad_()
    loss = siglip_loss(img, txt, ls, lb, image_ids, dims, temperature)
    loss.backward()
    return {
        "name": name, "n": n, "D": D,
        "logit_scale": float(torch.tensor(logit_scale, dtype=torch.float32)),
        "logit_bias": float(torch.tensor(logit_bias, dtype=torch.float32)),
        "temperature": temperature,
        "image_ids": image_ids, "dims": dims,
        "img": img32.flatten().tolist(), "txt": txt32.flatten().tolist(),
        "loss": loss.item(),
        "d_img": img.grad.flatten().tolist(), "d_txt": txt.grad.flatten().tolist(),
        "d_logit_scale": 0.0 if temperature > 0 else ls.grad.item(),
        "d_logit_bias": lb.grad.item(),
    }


def main():
    gen = torch.Generator().manual_seed(15)
    init_s, init_b = math.log(10), -10.0
    cases = [
        case("siglip init", gen, 8, 16, init_s, init_b),
        case("learned", gen, 8, 16, 2.0, -3.0),
        case("positive mask", gen, 8, 16, 1.5, -2.0, image_ids=[4, 1, 4, 7, 1, 4, 9, 2]),
        case("matryoshka", gen, 8, 16, 2.5, -5.0, dims=[16, 8, 4]),
        case("temperature", gen, 6, 8, 0.0, -4.0, temperature=0.1),
        case("all", gen, 7, 12, 1.0, -1.0, image_ids=[1, 1, 2, 3, 3, 3, 5], dims=[5, 12]),
        case("one pair", gen, 1, 8, init_s, init_b),
        # exp(9) ≈ 8103: logits in the thousands, where a naive log(sigmoid) is -inf.
        case("large logits", gen, 5, 8, 9.0, -20.0),
    ]
    print(json.dumps({"generator": "internal/loss/testdata/sigmoid_ref.py", "torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
