"""Recursive networks over trees (seed 003): the tree type and its readers, compositions (recursive network, RNTN,
Child-Sum and N-ary Tree-LSTM) and the level-batched encoder and node classifier."""

from .compositions import COMPOSITIONS as COMPOSITIONS
from .compositions import RNTN as RNTN
from .compositions import ChildSumTreeLSTM as ChildSumTreeLSTM
from .compositions import NaryTreeLSTM as NaryTreeLSTM
from .compositions import RecursiveNN as RecursiveNN
from .model import TreeClassifier as TreeClassifier
from .model import TreeEncoder as TreeEncoder
from .tree import Tree as Tree
from .tree import node_table as node_table
from .tree import parse_bracketed as parse_bracketed
from .tree import read_trees as read_trees
from .tree import write_trees as write_trees
