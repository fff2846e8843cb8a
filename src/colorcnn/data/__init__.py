"""Datasets: CIFAR-10 from the official archive or an image-folder tree, with a decoded cache."""

from colorcnn.data.datasets import (
    CLASS_NAMES,
    CourseData,
    DataSettings,
    load_course_data,
    load_raw_cifar10,
    resolve_categories,
)

__all__ = [
    "CLASS_NAMES",
    "CourseData",
    "DataSettings",
    "load_course_data",
    "load_raw_cifar10",
    "resolve_categories",
]
