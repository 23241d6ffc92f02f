"""A base loaded once, its adapters loaded into it unmerged, and mixing them.

Every adapter stays a separate set of LoRA weights in one ``PeftModel``;
a request's mix activates its adapters with each one's ``scaling`` multiplied
by its weight, which computes ``W x + sum_i w_i B_i A_i x``: the same model a
weighted merge makes, without touching the shared base weights. Unmerged
LoRA costs compute on every call (x1.35 on a real-size VITS), so up to
``hot_limit`` mixes that are asked for again are also kept merged into
private copies of the model (never into the shared one), the least recently
used one dropped first. Only the base's worker thread calls these methods.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
from typing import Any, Callable, Iterator

from lorakit.apply import load_base
from lorakit.artifact import WEIGHTS, check_base, peft_load_errors
from lorakit.config import RunConfig
from lorakit.errors import AdapterError
from lorakit.fingerprints import base_fingerprint, file_fingerprint
from lorakit.serving.catalog import AdapterEntry
from lorakit.task import Base, Task

#: A request's adapters: (public name, weight) pairs; empty means the base alone.
Mix = tuple[tuple[str, float], ...]


@dataclasses.dataclass
class LoadedBase:
    """A task's base in memory and the adapters loaded into it."""

    task_name: str
    name: str
    base: Base
    fingerprint: str
    model: Any  # the plain base model, then a PeftModel once an adapter is in
    adapters: dict[str, AdapterEntry] = dataclasses.field(default_factory=dict)
    peft_names: dict[str, str] = dataclasses.field(default_factory=dict)
    adapter_fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Adapters found for this base that cannot be used, with the reason.
    refused: dict[str, str] = dataclasses.field(default_factory=dict)
    #: How many mixes may be kept merged in private copies (each a copy of the model in memory).
    hot_limit: int = 0
    hot: collections.OrderedDict = dataclasses.field(default_factory=collections.OrderedDict)
    uses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    #: The version of each adapter last offered (loaded or refused), to see a rewrite.
    versions: dict[str, AdapterEntry] = dataclasses.field(default_factory=dict)
    _peft_numbers: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    #: The mix the shared model is left set to, and how to undo it: the next
    #: request for the same mix (a streamed text's next sentence) runs as is.
    _applied: tuple[Mix, Callable[[], None]] | None = None

    @classmethod
    def load(cls, task_name: str, name: str, hot_limit: int = 0) -> "LoadedBase":
        from lorakit.device import inference_device
        from lorakit.runs import make_task

        task = make_task(RunConfig(task=task_name, base=name))
        base = load_base(task, name)
        fingerprint = base_fingerprint(base, task_name)
        task.prepare_base(base, None)
        base.model.eval().to(inference_device())
        return cls(task_name, name, base, fingerprint, base.model, hot_limit=hot_limit)

    def add(self, entry: AdapterEntry) -> None:
        """Load ``entry`` into the model after checking it was made for this
        base. An older version of the same name (its folder rewritten by a
        resumed or retrained run) is replaced, or dropped if the new one is
        refused; the very same version is left as it is."""
        from peft import PeftModel

        from lorakit.device import inference_device
        from lorakit.lora import match_conv_geometry

        if self.versions.get(entry.name) == entry:
            return
        self._settle()
        old = self._forget(entry.name)
        self.versions[entry.name] = entry
        try:
            check_base(entry.manifest, self.fingerprint, entry.folder, self.task_name)
            peft_name = f"adapter{next(self._peft_numbers)}"  # peft names may not hold "." or "/"
            with peft_load_errors(entry.folder):
                if isinstance(self.model, PeftModel):
                    self.model.load_adapter(str(entry.folder), adapter_name=peft_name, is_trainable=False)
                else:
                    self.model = PeftModel.from_pretrained(self.model, str(entry.folder), adapter_name=peft_name,
                                                           is_trainable=False)
            match_conv_geometry(self.model)
            self.model.eval().to(inference_device())
        except AdapterError as exc:
            self.refused[entry.name] = str(exc)
        else:
            self.adapters[entry.name] = entry
            self.peft_names[entry.name] = peft_name
            self.adapter_fingerprints[entry.name] = file_fingerprint(entry.folder / WEIGHTS)
        finally:
            self._unload(entry.name, old)  # once the new version is in: the model is never left empty

    def remove(self, name: str) -> None:
        """Unload an adapter whose folder is gone."""
        self._settle()
        self._unload(name, self._forget(name))

    def _forget(self, name: str) -> str | None:
        """Forget what is known of ``name``'s version; its peft name when its weights are loaded."""
        for known in (self.versions, self.refused, self.adapters, self.adapter_fingerprints):
            known.pop(name, None)
        return self.peft_names.pop(name, None)

    def _unload(self, name: str, peft_name: str | None) -> None:
        """Take a forgotten version's weights out of the model and drop the merged copies holding it."""
        if peft_name is None:
            return
        if len(self.model.peft_config) == 1:
            self.model = self.model.unload()  # peft cannot run with no adapter: back to the plain base
        else:
            self.model.delete_adapter(peft_name)
        for by_mix in (self.hot, self.uses):
            for mix in [mix for mix in by_mix if any(n == name for n, _ in mix)]:
                del by_mix[mix]

    def task_for(self, mix: Mix, overrides: dict[str, Any]) -> Task:
        """The task with the first adapter's saved options (or the defaults),
        ``overrides`` on top, fitted to the base as when an adapter is opened."""
        from lorakit.runs import make_task

        saved = self.adapters[mix[0][0]].manifest.options if mix else {}
        task = make_task(RunConfig(task=self.task_name, base=self.name, options={**saved, **overrides}))
        task.prepare_base(self.base, None)
        return task

    def check_mix(self, mix: Mix) -> None:
        """Refuse a mix that names an adapter this base lacks or that mixes an
        adapter training whole modules with others (as weighted merges do)."""
        for name, _ in mix:
            if name in self.refused:
                raise AdapterError(f"adapter {name!r} cannot be used: {self.refused[name]}")
            if name not in self.adapters:
                raise AdapterError(f"adapter {name!r} is not loaded on base {self.name!r}")
        saving = [name for name, _ in mix if self.adapters[name].manifest.modules_to_save]
        if saving and len(mix) > 1:
            raise AdapterError(f"adapter {saving[0]!r} trains whole modules (modules_to_save), which cannot be "
                               "mixed with other adapters; use it alone")

    @contextlib.contextmanager
    def mixed(self, mix: Mix) -> Iterator[Any]:
        """The model with exactly ``mix`` active, each adapter scaled by its
        weight (a hot mix's merged copy instead). The shared model stays set
        to the mix until another one, or a change of adapters, needs it."""
        from peft import PeftModel

        from lorakit.merge import set_weights, weighted

        self.check_mix(mix)
        if not isinstance(self.model, PeftModel):
            yield self.model
            return
        hot = self._hot_copy(mix) if mix else None
        if hot is not None:
            yield hot
            return
        if not mix:  # the base alone
            with weighted(self.model, {}) as model:
                yield model
            return
        if self._applied is None or self._applied[0] != mix:
            self._settle()
            self._applied = mix, set_weights(self.model, {self.peft_names[name]: weight for name, weight in mix})
        yield self.model

    def _settle(self) -> None:
        """Put the shared model back to its adapters' own active set and scalings."""
        if self._applied is not None:
            _, put_back = self._applied
            self._applied = None
            put_back()

    def _hot_copy(self, mix: Mix) -> Any:
        """The private merged copy of ``mix``, made on its second use while
        ``hot_limit`` allows; None to run it unmerged."""
        if not self.hot_limit:
            return None
        if mix in self.hot:
            self.hot.move_to_end(mix)
            return self.hot[mix]
        self.uses[mix] += 1
        if len(self.uses) > 10_000:  # many one-off weights: forget the counts, not the copies
            self.uses.clear()
        if self.uses[mix] < 2:
            return None
        if len(self.hot) >= self.hot_limit:
            self.hot.popitem(last=False)
        self.hot[mix] = self._merged_copy(mix)
        return self.hot[mix]

    def _merged_copy(self, mix: Mix) -> Any:
        """A copy of the model with ``mix`` merged in at its weights (as
        ``merge_weighted`` merges), the shared model untouched."""
        import copy

        from lorakit.merge import merge, scale

        self._settle()  # the copy starts from the adapters' own scalings
        clone = copy.deepcopy(self.model)
        names = {self.peft_names[name]: weight for name, weight in mix}
        scale(clone, names)
        return merge(clone, list(names)).eval()

    def provenance(self, mix: Mix) -> dict[str, Any]:
        """The base and each adapter by weight and file fingerprint, as batch
        captioning records carry them."""
        return {"base": self.name, "base_fingerprint": self.fingerprint,
                "adapters": [{"name": name, "weight": weight, "fingerprint": self.adapter_fingerprints[name]}
                             for name, weight in mix]}
