/**
 * The documents of every guest API for one instance. The renderers (ec2.ts,
 * openstack.ts, nocloud.ts, network_config.ts, tree.ts) are pure functions
 * of (configuration, instance): no I/O, nothing from http/. documents.ts
 * adds user-data and vendor-data through the template renderer, and is the
 * one source of both the HTTP APIs and the seed images.
 *
 * @module
 */

export {
  configDriveFiles,
  type Document,
  type DocumentDeps,
  nocloudFile,
  nocloudSeedFiles,
  openstackFile,
  renderUserData,
  renderVendorData,
  userDataTarget,
} from "./documents.ts";
export {
  availabilityZone,
  ec2DynamicTree,
  ec2MetadataTree,
  instanceIdentityDocument,
  instanceType,
  isEc2Version,
  PROBED_EC2_VERSIONS,
  versionListing,
} from "./ec2.ts";
export {
  networkConfigV2,
  type NetworkMode,
  openstackNetworkData,
  type StaticAddress,
  staticAddress,
} from "./network_config.ts";
export { NOCLOUD_FILES, nocloudMetaData, nocloudNetworkConfig } from "./nocloud.ts";
export {
  isOpenstackVersion,
  OPENSTACK_FILES,
  OPENSTACK_VERSIONS,
  openstackMetaData,
  openstackVendorData,
  openstackVendorData2,
  openstackVersionListing,
} from "./openstack.ts";
export {
  directory,
  listDirectory,
  lookupPath,
  type TreeDirectory,
  type TreeLookup,
  type TreeNode,
  treeToJson,
  walkTree,
} from "./tree.ts";
