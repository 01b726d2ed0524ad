"""The model zoo: importing this package registers every family."""
from . import lenet  # noqa: F401
from . import alexnet  # noqa: F401
from . import vgg  # noqa: F401
from . import resnet  # noqa: F401
from . import resnet_cifar  # noqa: F401
from . import googlenet  # noqa: F401
from . import nin  # noqa: F401
