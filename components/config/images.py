"""The `images` key: a stack's changes to the pinned images of components/images.py (a mirror, a newer tag)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field, create_model

from components.config.fields import matching
from components.config.model import Model
from components.images import IMAGES, PinnedImage

ImageRepository = Annotated[str, matching(
    r"[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*",
    "must be an image repository without tag or digest, like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus")]
ImageTag = Annotated[str, matching(r"(?!latest$)[\w][\w.-]{0,127}", "must be an image tag (not latest), like v3.14.0")]
AirflowTag = Annotated[str, matching(r"3\.\d+\.\d+(-python3\.\d+)?", "must be an Airflow 3 image tag, like 3.1.7 or 3.1.7-python3.12")]
ImageDigest = Annotated[str, matching(r"sha256:[0-9a-f]{64}", "must be a sha256 digest, like sha256:<64 hexadecimal digits>")]


class ImageOverride(Model):
    repository: Optional[ImageRepository] = Field(None, description="Pull from here instead, registry included (a mirror: the digest stays).")
    tag: Optional[ImageTag] = Field(None, description="Another tag (its digest is unknown until `digest` gives it).")
    digest: Optional[ImageDigest] = Field(None, description="The tag's sha256 index digest.")

    def applied(self, image: PinnedImage) -> PinnedImage:
        return image.overridden(self.repository, self.tag, self.digest)


class AirflowImageOverride(ImageOverride):
    tag: Optional[AirflowTag] = Field(None, description="Another Airflow 3 tag; its version is also the chart's airflowVersion.")


def _field(image: PinnedImage) -> Any:
    override = AirflowImageOverride if image.name == "airflow" else ImageOverride
    return (Optional[override], Field(None, alias=image.name, description=f"{image.chart}'s {image.values_path}, {image.reference} unless set."))


class _Images(Model):
    def pinned(self) -> dict[str, PinnedImage]:
        """Every image as this stack pulls it."""
        return {name: override.applied(IMAGES[name]) if (override := getattr(self, name)) else IMAGES[name] for name in IMAGES}


ImagesConfig = create_model("ImagesConfig", __base__=_Images, __doc__="Changes to the pinned images (components/images.py).",
                            **{name: _field(image) for name, image in IMAGES.items()})
